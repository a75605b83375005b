package ctiqbe

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// TestPhoneHeartbeatsAcrossWaits: heartbeats keep their pace across the
// phone's script even when every wait in it is shorter than the heartbeat
// interval (a ticker per wait would never fire).
func TestPhoneHeartbeatsAcrossWaits(t *testing.T) {
	phoneSide, managerSide := net.Pipe()
	heartbeats := make(chan int, 1)
	go func() {
		defer managerSide.Close()
		n := 0
		defer func() { heartbeats <- n }()
		for {
			m, err := ReadMessage(managerSide)
			if err != nil {
				return
			}
			var reply Message
			switch m.Type {
			case TypeRegister:
				reply = Message{Type: TypeRegisterAck, DeviceID: 1, Heartbeat: 1}
			case TypeMakeCall:
				reply = Message{Type: TypeCallSetup, CallID: 5, MediaAddr: managerAddr, MediaPort: 16384}
			case TypeHeartbeat:
				n++ // never answered, nor is the hang-up
				continue
			default:
				continue
			}
			if WriteMessage(managerSide, reply) != nil {
				return
			}
		}
	}()
	wait := 45 * time.Millisecond
	cfg := PhoneConfig{Device: "d", Number: "1", MediaAddr: phoneAddr, MediaPort: 4000,
		Heartbeat: 50 * time.Millisecond, CallAfter: wait, CallDuration: wait, AckTimeout: wait}
	err := RunPhone(context.Background(), phoneSide, cfg, nil)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("RunPhone = %v, want ErrUnreachable", err)
	}
	if n := <-heartbeats; n == 0 {
		t.Error("no heartbeat was sent over three waits, each shorter than the interval, longer together")
	}
}

func TestRunPhoneRejectsBadConfig(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	if err := RunPhone(context.Background(), a, PhoneConfig{}, nil); err == nil {
		t.Error("RunPhone with a zero heartbeat succeeded")
	}
}
