//go:build !unix

package router

import "syscall"

const rawWriteThenRead = false

func writeThenRead(syscall.RawConn, *[]byte, []byte) (int, bool, error) { return 0, false, nil }
