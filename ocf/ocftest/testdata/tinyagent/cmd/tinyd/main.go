package main

import (
	"os"

	"example.com/tinyagent/tinyd"
	"github.com/ha-framework/ha-framework/ocf/daemon"
)

func main() { os.Exit(daemon.Main(tinyd.New(), tinyd.Companion)) }
