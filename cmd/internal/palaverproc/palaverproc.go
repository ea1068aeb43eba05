// Package palaverproc builds the real palaver binary and runs it in a
// process of its own, for the load test and the crash test: they drive it
// from outside, over loopback, as the platforms and the model would.
package palaverproc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Build compiles cmd/palaver into dir and returns the binary's path.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "palaver")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/palaver-bot/palaver/cmd/palaver")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("palaverproc: build palaver: %w\n%s", err, out.String())
	}
	return bin, nil
}

// FreeAddr returns a loopback address with a port free at the moment.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("palaverproc: free address: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Proc is one running palaver process.
type Proc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
}

// Start runs bin with args (such as "run", "--config", path), its standard
// output and error written to a new file at logPath.
func Start(bin string, args []string, logPath string) (*Proc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("palaverproc: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("palaverproc: start palaver: %w", err)
	}
	p := &Proc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// LogPath is the file receiving the process's output.
func (p *Proc) LogPath() string { return p.logPath }

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and if so how (nil for
// exit status 0).
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// State is the exited process's state; nil while it runs.
func (p *Proc) State() *os.ProcessState {
	select {
	case <-p.done:
		return p.cmd.ProcessState
	default:
		return nil
	}
}

// Stop interrupts the process (a clean shutdown, as Ctrl-C) and waits for
// it to exit, killing it after grace. It returns an error when the process
// needed killing or exited with a non-zero status.
func (p *Proc) Stop(grace time.Duration) error {
	_ = p.cmd.Process.Signal(os.Interrupt)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.Kill()
		return fmt.Errorf("palaverproc: palaver did not exit within %s of an interrupt (log: %s)", grace, p.logPath)
	}
	if p.waitErr != nil {
		return fmt.Errorf("palaverproc: palaver exited with %w (log: %s)", p.waitErr, p.logPath)
	}
	return nil
}

// Kill ends the process at once (SIGKILL where there are signals: no
// deferred function, no flush, no shutdown) and waits for it to be gone.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill() // fails only when the process has exited already
	<-p.done
}
