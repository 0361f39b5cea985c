// kovn's CNI plugin: the executable containerd runs once per pod and command. A thin client: VERSION is
// answered here; every other call (its CNI_* variables and stdin, untouched) goes to the node agent's
// unix socket named in the config, which validates it and says what is printed (cni/server.ts).
//
// Go, not TypeScript, for one reason: it runs for every ADD and DEL (containerd sends several DELs per
// sandbox), and a Node process costs ~40 ms of CPU to start where this costs ~2 ms; nor does it need an
// interpreter copied onto the host. It holds no logic of kovn's: the agent decides everything.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Set at build time from cni/versions.ts (deploy/local/tools.ts), so the two never disagree.
var (
	supportedVersions = ""
	latestVersion     = ""
)

// CNI error codes (SPEC.md, "Error"), as cni/errors.ts names them.
const (
	errIO                 = 5
	errDecode             = 6
	errInvalidNetconf     = 7
	errTryAgainLater      = 11
	errPluginNotAvailable = 50
)

// How long each command may wait for the agent (kubelet gives a whole sandbox start 4 min).
var timeouts = map[string]time.Duration{"ADD": 120 * time.Second, "DEL": 60 * time.Second, "CHECK": 60 * time.Second, "STATUS": 10 * time.Second, "GC": 120 * time.Second}

// How long ADD/DEL/CHECK/GC wait for an unreachable agent to come back (an upgrade, a crash).
const agentWait = 20 * time.Second

// The largest answer accepted: a CNI result is a few KiB.
const maxAnswer = 1 << 20

// The variables the spec defines; nothing else of the runtime's environment leaves the plugin.
var cniVars = []string{"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"}

var semver = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

type cniError struct {
	Code    int    `json:"code"`
	Msg     string `json:"msg"`
	Details string `json:"details,omitempty"`
}

func (e *cniError) Error() string { return e.Msg }

// What the agent answers: what to print, the exit code, a line for the config's log file.
type answer struct {
	Stdout   *string `json:"stdout"`
	ExitCode *int    `json:"exitCode"`
	LogLine  *string `json:"logLine"`
}

// JSON as JavaScript's JSON.stringify writes it (no HTML escaping), without the trailing newline.
func marshal(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

func errorOutput(version string, e *cniError) string {
	return marshal(struct {
		CniVersion string `json:"cniVersion"`
		*cniError
	}{version, e})
}

func readStdin() (string, error) {
	// A person running the binary at a terminal would otherwise wait here forever.
	if st, err := os.Stdin.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		return "", nil
	}
	b, err := io.ReadAll(os.Stdin)
	return string(b), err
}

// The input's cniVersion: for VERSION any string given, for errors only one that reads as a version.
func inputVersion(stdin string, strict bool) string {
	var c struct {
		CniVersion any `json:"cniVersion"`
	}
	if json.Unmarshal([]byte(stdin), &c) == nil {
		if v, ok := c.CniVersion.(string); ok && v != "" && (!strict || semver.MatchString(v)) {
			return v
		}
	}
	return latestVersion
}

func versionOutput(stdin string) string {
	return marshal(struct {
		CniVersion        string   `json:"cniVersion"`
		SupportedVersions []string `json:"supportedVersions"`
	}{inputVersion(stdin, false), strings.Split(supportedVersions, ",")})
}

// The few config fields the plugin itself needs; the agent validates the whole config.
type peeked struct{ agentSocket, logFile string }

func peek(stdin string) (peeked, error) {
	var raw any
	if err := json.Unmarshal([]byte(stdin), &raw); err != nil {
		return peeked{}, &cniError{errDecode, "failed to decode the network config on stdin", err.Error()}
	}
	c, _ := raw.(map[string]any)
	sock, _ := c["agentSocket"].(string)
	if !strings.HasPrefix(sock, "/") {
		return peeked{}, &cniError{errInvalidNetconf, "invalid network config", "agentSocket: an absolute path is required"}
	}
	log, _ := c["logFile"].(string)
	if !strings.HasPrefix(log, "/") {
		log = ""
	}
	return peeked{sock, log}, nil
}

// Why the agent gave no usable answer.
type callError struct {
	kind string // unreachable: nobody listens; timeout; closed: hung up mid-call; protocol: a bad answer
	msg  string
}

func (e *callError) Error() string { return e.msg }

func callAgent(sock string, call []byte, command string, timeout time.Duration) (*answer, error) {
	deadline := time.Now().Add(timeout)
	conn, err := net.DialTimeout("unix", sock, timeout)
	if err != nil {
		reason := err.Error()
		var errno syscall.Errno
		if errors.As(err, &errno) {
			reason = errnoName(errno)
		}
		return nil, &callError{"unreachable", fmt.Sprintf("cannot reach kovn agent at %s: %s", sock, reason)}
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	timedOut := func(err error) bool {
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout()
	}
	late := &callError{"timeout", fmt.Sprintf("kovn agent at %s did not answer %s within %s s", sock, command, strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64))}
	if _, err := conn.Write(call); err != nil {
		if timedOut(err) {
			return nil, late
		}
		return nil, &callError{"closed", fmt.Sprintf("connection to kovn agent at %s failed: %v", sock, err)}
	}
	var got []byte
	buf := make([]byte, 64<<10)
	for !bytes.Contains(got, []byte{'\n'}) {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if len(got) > maxAnswer {
			return nil, &callError{"protocol", fmt.Sprintf("kovn agent response over %d bytes", maxAnswer)}
		}
		if err == io.EOF {
			if len(got) == 0 {
				return nil, &callError{"closed", fmt.Sprintf("kovn agent at %s closed the connection without answering", sock)}
			}
			break
		}
		if err != nil {
			if timedOut(err) {
				return nil, late
			}
			return nil, &callError{"closed", fmt.Sprintf("connection to kovn agent at %s failed: %v", sock, err)}
		}
	}
	line, _, _ := bytes.Cut(got, []byte{'\n'})
	short := string(line)
	if len(short) > 120 {
		short = short[:120]
	}
	var a answer
	if err := json.Unmarshal(line, &a); err != nil {
		return nil, &callError{"protocol", "kovn agent sent non-JSON: " + short}
	}
	if a.Stdout == nil || a.ExitCode == nil || (*a.ExitCode != 0 && *a.ExitCode != 1) {
		return nil, &callError{"protocol", "kovn agent sent an invalid answer: " + short}
	}
	return &a, nil
}

// The errno's name as Node reports it (ENOENT, ECONNREFUSED), which operators grep for.
func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.ENOENT:
		return "ENOENT"
	case syscall.ECONNREFUSED:
		return "ECONNREFUSED"
	case syscall.EACCES:
		return "EACCES"
	case syscall.ENOTSOCK:
		return "ENOTSOCK"
	}
	return e.Error()
}

// A duration in ms from the environment (tests and debugging); false when unset or not a number >= 0.
func envMs(name string) (time.Duration, bool) {
	v, err := strconv.ParseFloat(os.Getenv(name), 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return time.Duration(v * float64(time.Millisecond)), true
}

// One non-VERSION call: forwarded, waiting for an agent that restarts; an unreachable one in CNI's terms.
func ask(command, sock string, call []byte) (*answer, error) {
	timeout, ok := envMs("KOVN_CNI_TIMEOUT_MS")
	if !ok || timeout == 0 {
		if timeout, ok = timeouts[command]; !ok {
			timeout = 60 * time.Second
		}
	}
	wait, ok := envMs("KOVN_CNI_AGENT_WAIT_MS")
	if !ok {
		wait = agentWait
	}
	if command == "STATUS" {
		wait = 0
	}
	wait = min(wait, timeout)
	deadline := time.Now().Add(wait)
	for {
		a, err := callAgent(sock, call, command, timeout)
		if err == nil {
			return a, nil
		}
		var ce *callError
		errors.As(err, &ce)
		// Only "nobody listens" is retried: the call never reached an agent, so it cannot run twice.
		if ce.kind == "unreachable" && time.Now().Add(250*time.Millisecond).Before(deadline) {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		switch {
		case ce.kind == "protocol":
			return nil, &cniError{errIO, "bad answer from kovn agent", ce.msg}
		case command == "STATUS":
			// STATUS reports the plugin unusable; the others ask the runtime to retry (kubelet retries ADD and DEL).
			return nil, &cniError{errPluginNotAvailable, "kovn agent not available at " + sock, ce.msg}
		default:
			return nil, &cniError{errTryAgainLater, "kovn agent not available at " + sock + ", try again later", ce.msg}
		}
	}
}

func run() (stdout string, exitCode int, logFile, logLine string) {
	command := os.Getenv("CNI_COMMAND")
	stdin, err := readStdin()
	if err != nil {
		return errorOutput(latestVersion, &cniError{errIO, "failed to read the network config from stdin", err.Error()}), 1, "", ""
	}
	if command == "VERSION" {
		return versionOutput(stdin), 0, "", ""
	}
	version := inputVersion(stdin, true)
	fail := func(e *cniError) (string, int, string, string) {
		line := fmt.Sprintf("%s error %d: %s", command, e.Code, e.Msg)
		if e.Details != "" {
			line += " (" + e.Details + ")"
		}
		return errorOutput(version, e), 1, logFile, line
	}
	conf, err := peek(stdin)
	if err != nil {
		return fail(err.(*cniError))
	}
	logFile = conf.logFile
	env := map[string]string{}
	for _, k := range cniVars {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	call := marshal(struct {
		Env   map[string]string `json:"env"`
		Stdin string            `json:"stdin"`
	}{env, stdin}) + "\n"
	a, err := ask(command, conf.agentSocket, []byte(call))
	if err != nil {
		return fail(err.(*cniError))
	}
	line := ""
	if a.LogLine != nil {
		line = *a.LogLine
	}
	return *a.Stdout, *a.ExitCode, logFile, line
}

func main() {
	if latestVersion == "" || supportedVersions == "" {
		fmt.Fprintln(os.Stderr, "kovn: this plugin was built without its CNI versions (build it with deploy/local/tools.ts)")
		os.Exit(1)
	}
	stdout, code, logFile, logLine := run()
	if stdout != "" {
		fmt.Println(stdout)
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "kovn: %s\n", stdout)
	}
	if logFile != "" && logLine != "" {
		// The log is a convenience; the answer on stdout is what counts.
		if f, err := os.OpenFile(logFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(f, "%s %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), logLine)
			f.Close()
		}
	}
	os.Exit(code)
}
