package demo_test

import (
	"testing"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }
