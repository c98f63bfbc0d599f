package web

import (
	"embed"
	"io/fs"
	"net/http"
)

// dist holds the front end as make build bundles it into dist/app (web/,
// npm and esbuild; never committed). A tree built without npm has only
// dist/placeholder, committed: a page saying how to build the console.
//
//go:embed all:dist
var dist embed.FS

// Bundle is the embedded front end.
func Bundle() fs.FS {
	dir := "dist/app"
	if _, err := fs.Stat(dist, dir+"/index.html"); err != nil {
		dir = "dist/placeholder"
	}
	sub, err := fs.Sub(dist, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// assets serves the front end; every path that is not a file is the
// single page (its routes are the URL's fragment).
func (h *Handler) assets() http.Handler {
	files := http.FileServerFS(h.cfg.Assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path != "/" {
			if _, err := fs.Stat(h.cfg.Assets, r.URL.Path[1:]); err != nil {
				r.URL.Path = "/"
			}
		}
		if r.URL.Path == "/" {
			w.Header().Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})
}
