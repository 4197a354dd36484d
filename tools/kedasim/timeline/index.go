package timeline

import (
	"bytes"
	"html/template"
	"os"
	"path/filepath"
)

// IndexRow is one run on an index page: its name links to its page.
type IndexRow struct {
	Name   string
	Page   string // relative to the index, e.g. TestX/timeline.html
	Failed bool
	Cells  []string // the rest of the summary row, one per header after "result"
}

var indexTemplate = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #1f2328; background: #fff; }
h1 { font-size: 1.35em; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #d8dee4; padding: .3em .7em; text-align: left; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1a7f37; font-weight: 600; }
.fail { color: #cf222e; font-weight: 600; }
.muted { color: #656d76; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="muted">{{.Intro}}</p>
<table>
<thead><tr><th>scenario</th><th>result</th>{{range .Header}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range .Rows}}
<tr><td><a href="{{.Page}}">{{.Name}}</a></td>{{if .Failed}}<td class="fail">FAIL</td>{{else}}<td class="ok">ok</td>{{end}}{{range .Cells}}<td class="num">{{.}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
</body>
</html>
`))

// WriteIndex writes an index page at path: one row per run, its name
// linking to its timeline page.
func WriteIndex(path, title, intro string, header []string, rows []IndexRow) error {
	var b bytes.Buffer
	if err := indexTemplate.Execute(&b, struct {
		Title, Intro string
		Header       []string
		Rows         []IndexRow
	}{title, intro, header, rows}); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
