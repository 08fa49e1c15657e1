package guard

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// spawner starts children from one goroutine locked to its OS thread for
// the life of the process. Linux delivers a child's parent-death signal
// when the thread that forked it exits, not the process; Go may end other
// threads, so every child is forked from this one, which never ends.
type spawner struct {
	reqs   chan spawnReq
	output io.Writer // the children's stdout and stderr; nil: the guard's own
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func newSpawner(output io.Writer) *spawner {
	s := &spawner{reqs: make(chan spawnReq), output: output}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		for r := range s.reqs {
			r.done <- r.cmd.Start()
		}
	}()
	return s
}

// child is a started process and its exit.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited and been reaped
	err  error         // its Wait error, set before done closes
}

// start starts cmd as a child that gets SIGKILL should the guard die,
// in the guard's own process group (tenement stops an instance by killing
// its group), with the guard's stdout and stderr.
func (s *spawner) start(name string, cmd *exec.Cmd) (*child, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// The children write into pipes the guard drains, never straight to
	// the guard's own stdout and stderr: those are pipes to tenement, and
	// when tenement dies a child writing to them would die of SIGPIPE
	// (Litestream in the middle of its last sync).
	out, errOut := io.Writer(os.Stdout), io.Writer(os.Stderr)
	if s.output != nil {
		out, errOut = s.output, s.output
	}
	cmd.Stdout, cmd.Stderr = forgiving{out}, forgiving{errOut}
	cmd.WaitDelay = time.Second // a grandchild holding the pipes open does not hold up Wait
	done := make(chan error, 1)
	s.reqs <- spawnReq{cmd, done}
	if err := <-done; err != nil {
		return nil, err
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) signal(sig syscall.Signal) { _ = c.cmd.Process.Signal(sig) }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// exitCode is how the child ended, as a shell reports it.
func (c *child) exitCode() int {
	var ee *exec.ExitError
	if !errors.As(c.err, &ee) {
		if c.err == nil {
			return 0
		}
		return 1
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

// kill sends SIGKILL and waits for the exit.
func (c *child) kill() {
	c.signal(syscall.SIGKILL)
	<-c.done
}

func newCommand(argv, env []string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	return cmd
}

// forgiving passes writes on and drops what cannot be written, so that a
// child's output never blocks or kills it.
type forgiving struct{ w io.Writer }

func (f forgiving) Write(p []byte) (int, error) {
	_, _ = f.w.Write(p)
	return len(p), nil
}
