package dockerservice

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRegistrationParams(t *testing.T) {
	registrator := map[string]string{"SERVICE_NAME": "shop", "SERVICE_TAGS": "blue,green", "SERVICE_CHECK_HTTP": "/health",
		"SERVICE_CHECK_INTERVAL": "5s", "SERVICE_CHECK_TIMEOUT": "2s"}
	tests := []struct {
		name   string
		c      Config
		labels map[string]string
		want   map[string]string
		err    string
	}{
		{"Registrator labels as defaults", Config{Image: "reg:5000/acme/web:1.4", Publish: []string{"127.0.0.1:8080:80"}, ConsulAddress: "127.0.0.1:8500"}, registrator,
			map[string]string{"consul_address": "127.0.0.1:8500", "service_name": "shop", "service_port": "8080", "service_tags": "blue,green",
				"check_http": "http://127.0.0.1:8080/health", "check_interval": "5s", "check_timeout": "2s"}, ""},
		{"parameters win over labels; the check uses the explicit address", Config{Image: "web", ServiceName: "web2", ServicePort: 9000, ServiceAddress: "10.0.0.5",
			ServiceTags: []string{"x"}, ConsulAddress: "c:8500", ConsulTokenFile: "/etc/t"}, registrator,
			map[string]string{"consul_address": "c:8500", "token_file": "/etc/t", "service_name": "web2", "service_port": "9000", "service_address": "10.0.0.5",
				"service_tags": "x", "check_http": "http://10.0.0.5:9000/health", "check_interval": "5s", "check_timeout": "2s"}, ""},
		{"no labels: the image's name and the agent's own check", Config{Image: "acme/web@sha256:abc", Publish: []string{"80", "8080:80"}, CheckTCP: "127.0.0.1:8080", ConsulAddress: "a:1"}, nil,
			map[string]string{"consul_address": "a:1", "service_name": "web", "service_port": "8080", "check_tcp": "127.0.0.1:8080"}, ""},
		{"SERVICE_CHECK_TCP", Config{Image: "web", ServicePort: 53, ConsulAddress: "a:1"}, map[string]string{"SERVICE_CHECK_TCP": "true", "SERVICE_CHECK_TTL": "30s"},
			map[string]string{"consul_address": "a:1", "service_name": "web", "service_port": "53", "check_tcp": "127.0.0.1:53", "check_ttl": "30s"}, ""},
		{"no port", Config{Image: "web", Publish: []string{"80"}}, nil, nil, "register=true needs service_port"},
		{"two ports", Config{Image: "web", Publish: []string{"8080:80", "8443:443"}}, nil, nil, "several published ports; set service_port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := registrationParams(&tt.c, tt.labels)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
