// Command hafw-web is the web service of the demo (make demo): a static
// HTTP server, run FROM scratch by docker-service or as a plain process,
// that names the node serving each request, so a client sees a failover.
//
//	hafw-web -listen 0.0.0.0:8080
//
// Every path answers 200 with "web on NODE for SUBJECT" (SUBJECT: the
// gateway's verified X-Auth-Subject header) and the header X-Served-By:
// NODE; /health answers "ok". NODE is the host name (a container on the
// host's network has its node's).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/stackkit"
)

func main() { os.Exit(run()) }

func run() int {
	listen := flag.String("listen", "0.0.0.0:8080", "address to serve on")
	flag.Parse()
	node, err := os.Hostname()
	if err != nil {
		node = "unknown"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(stackkit.ServedBy, node)
		sub := r.Header.Get("X-Auth-Subject")
		if sub == "" {
			sub = "anonymous"
		}
		fmt.Fprintf(w, "web on %s for %s\n", node, sub)
	})
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Println("web on", node, "listening on", *listen)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	return 0
}
