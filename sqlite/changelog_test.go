package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

// The change log keeps at least its latest 20,000 entries (at most
// 1,000 more), without gaps.
func TestChangeLogKeepsItsLatestEntries(t *testing.T) {
	ctx := context.Background()
	d, err := OpenEngine(ctx, filepath.Join(t.TempDir(), "x.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.cur.Load().sql.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 22500)
		INSERT INTO change_log (kind, key) SELECT 'tenant', 't' || i FROM n`); err != nil {
		t.Fatal(err)
	}
	var lo, hi, count int64
	if err := d.cur.Load().sql.QueryRowContext(ctx, `SELECT MIN(seq), MAX(seq), COUNT(*) FROM change_log`).Scan(&lo, &hi, &count); err != nil {
		t.Fatal(err)
	}
	if hi != 22500 || count < 20000 || count > 21000 || lo != hi-count+1 || lo == 1 {
		t.Fatalf("change log from %d to %d, %d entries", lo, hi, count)
	}
	if seq, err := d.cur.Load().q.LatestChangeSeq(ctx); err != nil || seq != hi {
		t.Fatalf("latest %d %v", seq, err)
	}
}
