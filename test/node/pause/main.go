// pause holds a pod's namespaces: it waits for SIGTERM or SIGINT and exits 0. Built with CGO_ENABLED=0 it is
// static, so the sandbox image is this one file.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}
