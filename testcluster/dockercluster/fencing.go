package dockercluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Fencing with fence_docker, the agent of Debian's fence-agents: it powers a
// "node" off and on through the Docker Engine API, here the container of
// that node, so a fenced node really loses every process at once.
//
// fence_docker 4.12 speaks HTTPS only (its "ssl" option defaults to on, which
// requires --tlscert, --tlskey and --tlscacert), and Docker Engine listens
// on a Unix socket here, not on TCP. So every node gets this host's Docker
// socket mounted at /hafw/docker.sock, and its entrypoint runs socat as a
// TLS terminator on 127.0.0.1:2376 (inside the node, reachable by no one
// else) that demands a client certificate of the cluster's own CA, created
// per cluster in Go. The price: a node can drive this host's Docker Engine
// (fencing any container), which is what fencing containers means.
const (
	fencePort  = "2376"
	tlsMount   = "/hafw/tls"
	dockerSock = "/var/run/docker.sock"
)

// fencingMounts writes the TLS material and returns the docker run
// arguments that give it and the Docker socket to a node.
func (b *Backend) fencingMounts() ([]string, error) {
	dir := filepath.Join(b.dir, "tls")
	if err := writeTLS(dir); err != nil {
		return nil, fmt.Errorf("fencing TLS material: %w", err)
	}
	if _, err := os.Stat(dockerSock); err != nil {
		return nil, fmt.Errorf("fencing needs the Docker socket: %w", err)
	}
	return []string{"-v", dir + ":" + tlsMount + ":ro", "-v", dockerSock + ":/hafw/docker.sock",
		"-e", "HAFW_FENCE_PORT=" + fencePort}, nil
}

// Fencer implements harness.Backend: fence_docker through the node's own
// TLS endpoint; a fenced node's container is stopped (docker kill).
func (b *Backend) Fencer() (string, []string, error) {
	if !b.fence {
		return "", nil, fmt.Errorf("cluster %s created without fencing", b.name)
	}
	return "fence_docker", []string{"ip=127.0.0.1", "ipport=" + fencePort, "ssl_secure=1", "api_version=1.41",
		"tlscert=" + tlsMount + "/client.pem", "tlskey=" + tlsMount + "/client.key",
		"tlscacert=" + tlsMount + "/ca.pem"}, nil
}

// writeTLS creates a CA, a server certificate for 127.0.0.1 and a client
// certificate, valid for a day, in dir.
func writeTLS(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hafw-test-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "ca.pem"), "CERTIFICATE", caDER, 0o644); err != nil {
		return err
	}
	for i, name := range []string{"server", "client"} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: "hafw-" + name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if name == "server" {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, name+".pem"), "CERTIFICATE", der, 0o644); err != nil {
			return err
		}
		// 0600 is enough: pacemaker-fenced runs fence_docker as root.
		if err := writePEM(filepath.Join(dir, name+".key"), "PRIVATE KEY", keyDER, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}
