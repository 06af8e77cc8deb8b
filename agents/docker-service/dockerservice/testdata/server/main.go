// Command server is the test service of docker-service's integration
// tests, built static and run in images FROM scratch. It serves HTTP on
// $ADDR (/ answers $NAME, else "hello"; /health answers 200 until /sick is
// requested, or from the start when $SICK is set), prints $EXIT_MSG and
// exits 3 when that is set, and with -check is the image's HEALTHCHECK
// command.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	check := flag.Bool("check", false, "check /health of the running server and exit 0 if it answers 200")
	flag.Parse()
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	if *check {
		c := http.Client{Timeout: time.Second}
		resp, err := c.Get("http://" + strings.Replace(addr, "0.0.0.0", "127.0.0.1", 1) + "/health")
		if err != nil {
			fmt.Println("health:", err)
			os.Exit(1)
		}
		fmt.Println("health: status", resp.StatusCode)
		if resp.StatusCode != 200 {
			os.Exit(1)
		}
		return
	}
	if msg := os.Getenv("EXIT_MSG"); msg != "" {
		fmt.Println("starting")
		time.Sleep(200 * time.Millisecond)
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(3)
	}
	var sick atomic.Bool
	sick.Store(os.Getenv("SICK") != "")
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if sick.Load() {
			http.Error(w, "sick", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/sick", func(w http.ResponseWriter, r *http.Request) { sick.Store(true) })
	name := os.Getenv("NAME")
	if name == "" {
		name = "hello"
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, name) })
	srv := &http.Server{Addr: addr, Handler: mux}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		fmt.Println("terminating")
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Println("listening on", addr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Println("serve:", err)
		os.Exit(1)
	}
}
