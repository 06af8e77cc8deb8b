module github.com/ha-framework/ha-framework

go 1.26

require (
	github.com/beevik/etree v1.8.1
	github.com/google/go-cmp v0.7.0
)
