package followed

import (
	"strconv"
	"strings"
	"sync"
	"testing"
)

func newTestDeviceParser(tb testing.TB) *DeviceParser {
	tb.Helper()
	p, err := NewDeviceParser()
	if err != nil {
		tb.Fatalf("NewDeviceParser: %v", err)
	}
	return p
}

// deviceCases are user agents as clients send them (published captures and the clients' own documentation).
var deviceCases = []struct {
	name string
	ua   string
	want Device
}{
	{"Outlook 2016/365 desktop", "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)",
		Device{DeviceDesktop, "Windows", "Outlook"}},
	{"Outlook desktop, Word-rendered IE agent", "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E; Microsoft Outlook 16.0.5422; ms-office; MSOffice 16)",
		Device{DeviceDesktop, "Windows", "Outlook"}},
	{"Outlook for Mac", "MacOutlook/16.62.22061100 (Intelx64 Mac OS X 12.4 (Build 21F79))",
		Device{DeviceDesktop, "macOS", "Outlook"}},
	{"Outlook on the web in Edge", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
		Device{DeviceDesktop, "Windows", "Edge"}},
	{"Outlook on the web in Chrome", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
		Device{DeviceDesktop, "Windows", "Chrome"}},
	{"Apple Mail macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
		Device{DeviceDesktop, "macOS", "Apple Mail"}},
	{"iPhone Mail", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
		Device{DeviceMobile, "iOS", "Apple Mail"}},
	{"iPad Mail", "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
		Device{DeviceTablet, "iOS", "Apple Mail"}},
	{"Safari on macOS is not Apple Mail", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
		Device{DeviceDesktop, "macOS", "Safari"}},
	{"Gmail image proxy (web and Gmail apps)", "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
		Device{DeviceUnknown, "", "Gmail"}},
	{"Android mail app in the system web view (Gmail app with a non-Google account)", "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36",
		Device{DeviceMobile, "Android", "Chrome Mobile WebView"}},
	{"Android tablet web view", "Mozilla/5.0 (Linux; Android 13; SM-X700 Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.163 Safari/537.36",
		Device{DeviceTablet, "Android", "Chrome Mobile WebView"}},
	{"Thunderbird Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0",
		Device{DeviceDesktop, "Windows", "Thunderbird"}},
	{"Thunderbird Linux", "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.4.2",
		Device{DeviceDesktop, "Linux", "Thunderbird"}},
	{"Samsung Email", "Mozilla/5.0 (Linux; Android 14; SM-S911B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 SamsungEmail/6.1.90.16",
		Device{DeviceMobile, "Android", "Samsung Email"}},
	{"Outlook for iOS web view", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Outlook-iOS/4.2531.0",
		Device{DeviceMobile, "iOS", "Outlook"}},
	{"Outlook for iOS own requests", "Outlook-iOS/709.2226530.prod.iphone (3.24.1)",
		Device{DeviceMobile, "iOS", "Outlook"}},
	{"Outlook for Android", "Outlook-Android/2.0",
		Device{DeviceMobile, "Android", "Outlook"}},
	{"Windows Mail", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; WebView/3.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19045",
		Device{DeviceDesktop, "Windows", "Windows Mail"}},
	{"Yahoo Mail image proxy", "Mozilla/5.0 (compatible; YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html)",
		Device{DeviceUnknown, "", "Yahoo Mail"}},
	{"Office link pre-check", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Microsoft Office Existence Discovery",
		Device{DeviceUnknown, "", "Microsoft Office"}},
	{"crawler", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		Device{DeviceUnknown, "", "Googlebot"}},
	{"Firefox on Ubuntu", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
		Device{DeviceDesktop, "Linux", "Firefox"}},
	{"Safari on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
		Device{DeviceMobile, "iOS", "Mobile Safari"}},
	{"curl", "curl/8.4.0", Device{DeviceUnknown, "", "curl"}},
	{"link preview naming a desktop OS", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.1938.76 Safari/537.36 BingPreview/1.0b",
		Device{DeviceUnknown, "Windows", "BingPreview"}},
	{"headless browser", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
		Device{DeviceUnknown, "Linux", "HeadlessChrome"}},
	{"empty", "", Device{Type: DeviceUnknown}},
	{"blank", "   ", Device{Type: DeviceUnknown}},
}

func TestDeviceParse(t *testing.T) {
	p := newTestDeviceParser(t)
	for _, tc := range deviceCases {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // uncached, then cached
				if got := p.Parse(tc.ua); got != tc.want {
					t.Fatalf("Parse(%q) = %+v, want %+v", tc.ua, got, tc.want)
				}
			}
		})
	}
}

func TestDeviceParseBounds(t *testing.T) {
	p := newTestDeviceParser(t)
	long := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 " + strings.Repeat("x", 100_000)
	if got := p.Parse(long); got.OS != "Windows" || got.Type != DeviceDesktop {
		t.Fatalf("Parse(long agent) = %+v, want a Windows desktop", got)
	}
	for i := range deviceCacheSize + 100 {
		p.Parse("probe/" + strconv.Itoa(i))
	}
	if n := p.cache.Len(); n > deviceCacheSize {
		t.Fatalf("cache holds %d entries, bound is %d", n, deviceCacheSize)
	}
}

func TestDeviceParseConcurrent(t *testing.T) {
	p := newTestDeviceParser(t)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 40 {
				tc := deviceCases[(w+i)%len(deviceCases)]
				if got := p.Parse(tc.ua); got != tc.want {
					t.Errorf("Parse(%q) = %+v, want %+v", tc.ua, got, tc.want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkDeviceParse(b *testing.B) {
	p := newTestDeviceParser(b)
	agents := []string{
		"Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36",
	}
	b.Run("cached", func(b *testing.B) {
		for _, ua := range agents {
			p.Parse(ua)
		}
		i := 0
		for b.Loop() {
			p.Parse(agents[i%len(agents)])
			i++
		}
	})
	b.Run("uncached", func(b *testing.B) {
		i := 0
		for b.Loop() {
			// A distinct agent every time: the cache never answers, the browser database always runs.
			p.Parse(agents[i%len(agents)] + " v/" + strconv.Itoa(i))
			i++
		}
	})
}
