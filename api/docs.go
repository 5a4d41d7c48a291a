package api

import (
	"embed"
	"io/fs"
	"net/http"

	swaggerui "github.com/swaggo/files/v2"
)

// The reference at /docs is Swagger UI served from the binary (the
// swaggo/files module embeds swagger-ui-dist, Apache-2.0), so it works
// offline and the page may load nothing but this server's own files.

//go:embed docsui
var docsUI embed.FS

// docsCSP allows this origin only. Swagger UI sets element styles from
// script, which style-src does not govern; the SVG icons it inlines are
// data: URIs.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// docsAssets are the few files of swagger-ui-dist the page uses; the rest
// (source maps, other bundles) is not served.
var docsAssets = map[string]fs.FS{
	"swagger-ui.css":       swaggerui.FS,
	"swagger-ui-bundle.js": swaggerui.FS,
	"favicon-32x32.png":    swaggerui.FS,
	"init.js":              must(fs.Sub(docsUI, "docsui")),
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func (s *Server) mountDocs() {
	page := must(fs.ReadFile(docsUI, "docsui/index.html"))
	s.mux.HandleFunc("GET /docs", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", docsCSP)
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		_, _ = w.Write(page)
	})
	s.mux.HandleFunc("GET /docs/assets/{file}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		fsys, ok := docsAssets[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Security-Policy", docsCSP)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		http.ServeFileFS(w, r, fsys, name)
	})
}
