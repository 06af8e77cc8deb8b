//go:build tools

// Package tools pins the real Consul server that integration tests run, in a
// module of its own so that Consul's dependency graph never enters the
// project's go.mod. testcluster/scripts/build-consul.sh builds it with
//
//	go build -o consul github.com/hashicorp/consul
package tools

import _ "github.com/hashicorp/consul"
