package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to one unit's API over its Unix socket. Safe for
// concurrent use.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the unit whose API socket is at socket.
func NewClient(socket string) *Client {
	return &Client{
		socket: socket,
		http: &http.Client{
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, "unix", socket)
				},
			},
			Timeout: 40 * time.Second,
		},
	}
}

// Close closes the client's idle connections to the unit.
func (c *Client) Close() { c.http.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, q url.Values, out any) error {
	u := "http://unit" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("unit API %s: %w (is the unit running?)", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("unit API %s: %s", path, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Status returns the unit's failover status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, "GET", "/v1/status", nil, &s)
}

func pageQuery(offset, limit int) url.Values {
	return url.Values{"offset": {fmt.Sprint(offset)}, "limit": {fmt.Sprint(limit)}}
}

// Conns returns one page of the connection table.
func (c *Client) Conns(ctx context.Context, offset, limit int) (Page[Conn], error) {
	var p Page[Conn]
	return p, c.do(ctx, "GET", "/v1/conns", pageQuery(offset, limit), &p)
}

// Xlates returns one page of the translation table.
func (c *Client) Xlates(ctx context.Context, offset, limit int) (Page[Xlate], error) {
	var p Page[Xlate]
	return p, c.do(ctx, "GET", "/v1/xlates", pageQuery(offset, limit), &p)
}

// ARP returns the unit's ARP table.
func (c *Client) ARP(ctx context.Context) ([]ARPEntry, error) {
	var out []ARPEntry
	return out, c.do(ctx, "GET", "/v1/arp", nil, &out)
}

// Bridge returns the unit's bridge (MAC address) table (transparent mode).
func (c *Client) Bridge(ctx context.Context) ([]BridgeEntry, error) {
	var out []BridgeEntry
	return out, c.do(ctx, "GET", "/v1/bridge", nil, &out)
}

// Routes returns the unit's routing table.
func (c *Client) Routes(ctx context.Context) ([]Route, error) {
	var out []Route
	return out, c.do(ctx, "GET", "/v1/routes", nil, &out)
}

// Interfaces returns the data interfaces with their counters.
func (c *Client) Interfaces(ctx context.Context) ([]Interface, error) {
	var out []Interface
	return out, c.do(ctx, "GET", "/v1/interfaces", nil, &out)
}

// Drops returns the drop counters by reason.
func (c *Client) Drops(ctx context.Context) (Drops, error) {
	var out Drops
	return out, c.do(ctx, "GET", "/v1/drops", nil, &out)
}

// Events returns events after seq; with wait > 0 it waits that long for one.
func (c *Client) Events(ctx context.Context, since uint64, wait time.Duration) ([]Event, error) {
	var out []Event
	q := url.Values{"since": {fmt.Sprint(since)}}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	return out, c.do(ctx, "GET", "/v1/events", q, &out)
}

// Failover sends an operator command: "active" (failover active),
// "standby" (no failover active) or "reset" (failover reset).
func (c *Client) Failover(ctx context.Context, do string) (string, error) {
	var out map[string]string
	if err := c.do(ctx, "POST", "/v1/failover", url.Values{"do": {do}}, &out); err != nil {
		return "", err
	}
	return out["result"], nil
}

// Module returns the unit's service module; an error when it has none.
func (c *Client) Module(ctx context.Context) (ModuleInfo, error) {
	var m ModuleInfo
	return m, c.do(ctx, "GET", "/v1/module", nil, &m)
}

// UAuth returns the unit's uauth table.
func (c *Client) UAuth(ctx context.Context) (UAuthInfo, error) {
	var u UAuthInfo
	return u, c.do(ctx, "GET", "/v1/uauth", nil, &u)
}

// ClearUAuth is `clear uauth [USER]` (or one source address with addr):
// it returns how many entries were removed.
func (c *Client) ClearUAuth(ctx context.Context, user, addr string) (int, error) {
	var out struct {
		Cleared int `json:"cleared"`
	}
	return out.Cleared, c.do(ctx, "POST", "/v1/uauth/clear", url.Values{"user": {user}, "addr": {addr}}, &out)
}
