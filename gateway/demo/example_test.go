package demo_test

import (
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/demo"
)

// The gateway mounts the page at "/", loading rtc.io from a self-hosted copy.
func Example() {
	h, err := demo.Handler(demo.Options{ClientURL: "/static/rtc.io-1.5.1.mjs"})
	if err != nil {
		fmt.Println(err)
		return
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/?room=standup", nil))
	fmt.Println(rec.Code, strings.Contains(rec.Body.String(), `content="/static/rtc.io-1.5.1.mjs"`))
	// Output: 200 true
}
