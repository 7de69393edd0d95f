// Package web holds the built add-in and /app pages (web/dist, made by `npm run build` from web/src and
// committed), embedded so that Engage serves its front end without Node at run time.
package web

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Assets returns the built pages, rooted at what /app/ serves; an error means the build is missing.
func Assets() (fs.FS, error) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, fmt.Errorf("web: built assets: %w", err)
	}
	if _, err := fs.Stat(sub, "index.html"); err != nil {
		return nil, fmt.Errorf("web: built assets have no index.html (run npm run build in web/): %w", err)
	}
	return sub, nil
}
