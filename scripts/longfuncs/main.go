// Command longfuncs lists the functions of the Go files under the given
// directories (default .) that are longer than -max lines, longest first,
// skipping generated files. A function that is mostly one table (a
// composite literal over half of its lines, as a table test's cases) is
// marked "table" and allowed. It exits 1 when it lists any other.
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type long struct {
	pos   token.Position
	name  string
	lines int
	table bool
}

func main() {
	limit := flag.Int("max", 100, "longest function allowed, in lines")
	flag.Parse()
	roots := flag.Args()
	if len(roots) == 0 {
		roots = []string{"."}
	}
	var found []long
	fset := token.NewFileSet()
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			if ast.IsGenerated(f) {
				return nil
			}
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				start, end := fset.Position(fn.Pos()), fset.Position(fn.End())
				if n := end.Line - start.Line + 1; n > *limit {
					found = append(found, long{pos: start, name: funcName(fn), lines: n, table: 2*tableLines(fset, fn) > n})
				}
			}
			return nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "longfuncs:", err)
			os.Exit(2)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].lines > found[j].lines })
	bad := 0
	for _, l := range found {
		mark := ""
		if l.table {
			mark = " (table)"
		} else {
			bad++
		}
		fmt.Printf("%4d %s:%d %s%s\n", l.lines, l.pos.Filename, l.pos.Line, l.name, mark)
	}
	if bad > 0 {
		os.Exit(1)
	}
}

// tableLines is how many lines the longest composite literal in fn spans.
func tableLines(fset *token.FileSet, fn *ast.FuncDecl) int {
	most := 0
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if cl, ok := n.(*ast.CompositeLit); ok {
			most = max(most, fset.Position(cl.End()).Line-fset.Position(cl.Pos()).Line+1)
			return false
		}
		return true
	})
	return most
}

func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok {
		t = ix.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}
