package leader

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Holder names this process as a lease holder: host/pid/nonce.
func Holder() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// HolderGone reports whether holder is a process of this host that no
// longer runs: it has exited, or it is a zombie (killed but not yet
// reaped by its parent, which signal 0 still counts as alive). Its lease
// need not be waited out. A holder of another host is never gone: only
// its lease's expiry tells.
func HolderGone(holder string) bool {
	pid, ok := localPid(holder)
	if !ok {
		return false
	}
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	state, err := procState(pid)
	return err == nil && (state == 'Z' || state == 'X')
}

// localPid is the pid of holder when it names a process of this host.
func localPid(holder string) (int, bool) {
	parts := strings.Split(holder, "/")
	if len(parts) != 3 {
		return 0, false
	}
	host, _ := os.Hostname()
	pid, err := strconv.Atoi(parts[1])
	if parts[0] != host || err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// procState reads a process's state letter from /proc/PID/stat: the
// field after the command, which is in parentheses and may hold any
// character, so the last ')' ends it.
func procState(pid int) (byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseState(b)
}

func parseState(stat []byte) (byte, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) || stat[i+1] != ' ' {
		return 0, fmt.Errorf("unreadable /proc stat %q", stat)
	}
	return stat[i+2], nil
}
