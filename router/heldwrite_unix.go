//go:build unix

package router

import (
	"io"
	"os"
	"syscall"
)

const rawWriteThenRead = true

// writeThenRead writes *held on rc's socket and reads into p, waiting on
// the poller between the two without a read. done is false when the
// socket did not take all of *held (what is left stays in it) or when
// nothing was tried (a deadline already passed, or the connection is
// closed): the caller finishes with ordinary I/O.
func writeThenRead(rc syscall.RawConn, held *[]byte, p []byte) (n int, done bool, err error) {
	var rerr error
	waited := false
	short := false
	ferr := rc.Read(func(fd uintptr) bool {
		for len(*held) > 0 {
			m, werr := syscall.Write(int(fd), *held)
			if m > 0 {
				*held = (*held)[:copy(*held, (*held)[m:])]
			}
			if werr == syscall.EINTR {
				continue
			}
			if werr != nil || m <= 0 {
				short = true // EAGAIN: full; an error: the ordinary write reports it
				return true
			}
		}
		if !waited {
			waited = true
			return false // wait for the answer, which comes after the write
		}
		for {
			n, rerr = syscall.Read(int(fd), p)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			n, rerr = 0, nil
			return false
		}
		return true
	})
	switch {
	case short:
		return 0, false, nil
	case ferr != nil:
		if len(*held) > 0 {
			return 0, false, ferr
		}
		return 0, true, ferr
	case rerr != nil:
		return 0, true, os.NewSyscallError("read", rerr)
	case n <= 0:
		return 0, true, io.EOF
	}
	return n, true, nil
}
