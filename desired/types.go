package desired

import (
	"fmt"
	"strconv"
	"time"

	"github.com/slum-fleet/slum/names"
)

// TenementID maps a tenant and one of its instance ids to the tenement
// instance id "tenant--instance" (see names.TenementID).
func TenementID(tenant, instance string) string { return names.TenementID(tenant, instance) }

// TenementName is the full tenement instance name "process:tenant--instance".
func TenementName(process, tenant, instance string) string {
	return names.TenementName(process, tenant, instance)
}

// ParseTenementName reverses TenementName. ok is false for any name slum's
// naming could not have produced; such instances are never slum's.
func ParseTenementName(name string) (process, tenant, instance string, ok bool) {
	return names.ParseTenementName(name)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// convert maps rows read from the database to the API's types.
func convert[R, T any](rows []R, err error, what string, fn func(R) T) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = fn(r)
	}
	return out, nil
}
