package main

import (
	"os"

	tiny "example.com/tinyagent"
)

func main() { os.Exit(tiny.New().Main()) }
