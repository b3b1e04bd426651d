// tlogcheck: checks an Evident bundle with Go's golang.org/x/mod/sumdb packages (note: the
// signed checkpoints; tlog: RFC 6962 inclusion and consistency proofs). Run in the
// extracted bundle with the verifier key you were given:  go run tlogcheck.go KEYFILE
package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", a...)
	os.Exit(1)
}

func read(name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		fail("%v", err)
	}
	return b
}

func hash(s string) tlog.Hash {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != tlog.HashSize {
		fail("%q is not a base64 SHA-256 hash", s)
	}
	var h tlog.Hash
	copy(h[:], b)
	return h
}

// open verifies a signed checkpoint by exactly the given key (name and key ID) and returns
// its size and root hash.
func open(name string, v note.Verifier, origin string) (int64, tlog.Hash) {
	n, err := note.Open(read(name), note.VerifierList(v))
	if err != nil {
		fail("%s: %v", name, err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != origin {
		fail("%s is not a checkpoint of %s", name, origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("%s: bad size %q", name, lines[1])
	}
	return size, hash(lines[2])
}

// hashes reads the base64 lines of a proof, up to the first blank line.
func hashes(lines []string) []tlog.Hash {
	var p []tlog.Hash
	for _, l := range lines {
		if l == "" {
			break
		}
		p = append(p, hash(l))
	}
	return p
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: go run tlogcheck.go VERIFIER-KEY-FILE")
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(read(os.Args[1]))))
	if err != nil {
		fail("verifier key: %v", err)
	}
	size, root := open("checkpoint", v, v.Name())
	entries, _ := filepath.Glob("entries/*.json")
	for _, e := range entries {
		i, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(e), ".json"), 10, 64)
		if err != nil {
			fail("%s: not an entry index", e)
		}
		lines := strings.Split(string(read(fmt.Sprintf("proofs/%d.tlog-proof", i))), "\n")
		if len(lines) < 3 || lines[0] != "c2sp.org/tlog-proof@v1" || lines[1] != fmt.Sprintf("index %d", i) {
			fail("proofs/%d.tlog-proof: not a tlog-proof of index %d", i, i)
		}
		tail := []byte(strings.Join(lines[2+len(hashes(lines[2:]))+1:], "\n"))
		if !bytes.Equal(tail, read("checkpoint")) {
			fail("proofs/%d.tlog-proof ends with another checkpoint", i)
		}
		if err := tlog.CheckRecord(hashes(lines[2:]), size, root, i, tlog.RecordHash(read(e))); err != nil {
			fail("entry %d is not in the tree of size %d: %v", i, size, err)
		}
	}
	earlier, _ := filepath.Glob("checkpoints/*")
	for _, c := range earlier {
		m, mroot := open(c, v, v.Name())
		if m == 0 || (m == size && mroot == root) {
			continue // every tree extends the empty one, and itself
		}
		p := strings.Split(string(read(fmt.Sprintf("consistency/%d-%d", m, size))), "\n")
		if err := tlog.CheckTree(hashes(p), size, root, m, mroot); err != nil {
			fail("the tree of size %d is not a prefix of this one: %v", m, err)
		}
	}
	fmt.Printf("OK: checkpoint %d signed by %s; %d entries included; %d earlier checkpoints consistent\n",
		size, v.Name(), len(entries), len(earlier))
}
