package localcluster

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestCertsAuthenticateBothEndsOnLoopback: the one certificate writeCerts
// issues serves and authenticates as client under its CA, for 127.0.0.1 and
// the names asked for — what the operator's gRPC metrics service and the
// adapter need for their mTLS, and the aggregator for the adapter.
func TestCertsAuthenticateBothEndsOnLoopback(t *testing.T) {
	dir := t.TempDir()
	if _, err := writeCerts(dir, "localhost", "keda-metrics-apiserver.keda.svc"); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.(*tls.Conn).Handshake()
			_, _ = conn.Write([]byte{1})
			conn.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, name := range []string{"127.0.0.1", "localhost", "keda-metrics-apiserver.keda.svc"} {
		conn, err := tls.Dial("tcp", "127.0.0.1:"+port, &tls.Config{
			RootCAs:      pool,
			ServerName:   name,
			Certificates: []tls.Certificate{cert},
		})
		if err != nil {
			t.Errorf("server name %s: %v", name, err)
			continue
		}
		// The server's verdict on our client certificate arrives with the first read.
		if _, err := conn.Read(make([]byte, 1)); err != nil {
			t.Errorf("server name %s: client certificate refused: %v", name, err)
		}
		conn.Close()
	}
	if _, err := tls.Dial("tcp", "127.0.0.1:"+port, &tls.Config{RootCAs: pool, ServerName: "example.com", Certificates: []tls.Certificate{cert}}); err == nil {
		t.Error("a name not asked for verified")
	}
}
