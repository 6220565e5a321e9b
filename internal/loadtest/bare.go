package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// BareTarget joins participants to cmd/bare-forwarder over its HTTP
// offer/answer signaling: a publishing participant has one peer connection
// that sends, and every participant one that receives.
type BareTarget struct {
	URL string
	Pid int
	// API builds the clients' peer connections; nil means
	// rtcio.LoopbackAPI(), the same clients as GatewayTarget's.
	API *webrtc.API
}

// Name implements Target.
func (b *BareTarget) Name() string { return "bare" }

// PID implements Target.
func (b *BareTarget) PID() int { return b.Pid }

type bareConn struct{ pcs []*webrtc.PeerConnection }

func (c *bareConn) Close() error {
	var errs []error
	for _, pc := range c.pcs {
		errs = append(errs, pc.Close())
	}
	return errors.Join(errs...)
}

// Join implements Target.
func (b *BareTarget) Join(ctx context.Context, p *Participant) (Conn, error) {
	api := b.API
	if api == nil {
		var err error
		if api, err = rtcio.LoopbackAPI(); err != nil {
			return nil, err
		}
	}
	conn := &bareConn{}
	fail := func(err error) (Conn, error) {
		_ = conn.Close()
		return nil, fmt.Errorf("loadtest: %s: %w", p.Name, err)
	}
	who := strconv.Itoa(p.Index)
	p.JoinNs = time.Now().UnixNano()
	if len(p.Tracks) > 0 {
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			return fail(err)
		}
		conn.pcs = append(conn.pcs, pc)
		for _, t := range p.Tracks {
			sender, err := pc.AddTrack(t)
			if err != nil {
				return fail(err)
			}
			go func() {
				for {
					pkts, _, err := sender.ReadRTCP()
					if err != nil {
						return
					}
					p.HandleRTCP(t, pkts)
				}
			}()
		}
		offer, err := pc.CreateOffer(nil)
		if err != nil {
			return fail(err)
		}
		gathered := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(offer); err != nil {
			return fail(err)
		}
		<-gathered
		var answer webrtc.SessionDescription
		if err := b.post(ctx, "/publish?participant="+who, pc.LocalDescription(), &answer); err != nil {
			return fail(err)
		}
		if err := pc.SetRemoteDescription(answer); err != nil {
			return fail(err)
		}
	}
	if p.Expect == 0 {
		return conn, nil
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return fail(err)
	}
	conn.pcs = append(conn.pcs, pc)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { p.OnTrack(tr) })
	var sub struct {
		Session string                    `json:"session"`
		Offer   webrtc.SessionDescription `json:"offer"`
	}
	q := url.Values{"participant": {who}, "want": {strconv.Itoa(p.Expect)}}
	if err := b.post(ctx, "/subscribe?"+q.Encode(), nil, &sub); err != nil {
		return fail(err)
	}
	if err := pc.SetRemoteDescription(sub.Offer); err != nil {
		return fail(err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(err)
	}
	<-gathered
	if err := b.post(ctx, "/answer?session="+url.QueryEscape(sub.Session), pc.LocalDescription(), nil); err != nil {
		return fail(err)
	}
	return conn, nil
}

func (b *BareTarget) post(ctx context.Context, path string, body, out any) error {
	var rd io.Reader = http.NoBody
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.URL+path, rd)
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	resp, err := oneShotClient().Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("POST %s: decode: %w", path, err)
	}
	return nil
}
