package followed

import (
	"fmt"
	"regexp"
	"strings"

	lru "github.com/hashicorp/golang-lru"
	"github.com/ua-parser/uap-go/uaparser"
)

// DeviceType is the kind of device an open or click came from, as the engagement timeline shows it.
type DeviceType string

// The device types Engage reports; UNKNOWN covers image proxies and scanners that hide the reader's device.
const (
	DeviceDesktop DeviceType = "DESKTOP"
	DeviceMobile  DeviceType = "MOBILE"
	DeviceTablet  DeviceType = "TABLET"
	DeviceUnknown DeviceType = "UNKNOWN"
)

// Device is what a user agent says about where a message was read, e.g. {DESKTOP, "Windows", "Outlook"}.
// Client is the email client when the agent names one, else the browser (Outlook on the web and other
// webmail in a browser report the browser, "Edge" or "Chrome": their image requests carry no webmail mark).
type Device struct {
	Type   DeviceType
	OS     string
	Client string
}

// DeviceParser turns user agents into devices; it is safe for concurrent use and caches its answers,
// because a browser-grade parse costs milliseconds and the same few agents come back all day.
type DeviceParser struct {
	ua    *uaparser.Parser
	rules []deviceRule
	robot *regexp.Regexp
	cache *lru.Cache
}

const (
	deviceCacheSize = 4096
	// deviceMaxAgent bounds what is parsed and cached: real agents are far shorter, hostile ones are not.
	deviceMaxAgent = 512
)

// deviceRule recognises one email client whose agent the general user-agent database misnames or misses.
type deviceRule struct {
	match  *regexp.Regexp
	client string
	os     string     // "" keeps the OS the general parser finds
	typ    DeviceType // "" classifies the device from the agent
	hides  bool       // a proxy or scanner: the reader's device and OS are unknown
}

// emailClientRules is tried in order, before the general parser. Each entry says why it is needed.
func emailClientRules() []deviceRule {
	return []deviceRule{
		// Gmail (web and apps) fetches images through its proxy: "... (via ggpht.com GoogleImageProxy)".
		{match: regexp.MustCompile(`GoogleImageProxy|ggpht\.com`), client: "Gmail", hides: true},
		// Yahoo Mail does the same: "Mozilla/5.0 (compatible; YahooMailProxy; https://help.yahoo.com/...)".
		{match: regexp.MustCompile(`YahooMailProxy`), client: "Yahoo Mail", hides: true},
		// Office's link pre-check ("... AppleWebKit/537.36 Microsoft Office Existence Discovery") is a machine,
		// not Outlook on a desktop, though it says Windows.
		{match: regexp.MustCompile(`Microsoft Office Existence Discovery`), client: "Microsoft Office", hides: true},
		// Outlook for iOS and Android add their own token, alone or after the system web view's agent.
		{match: regexp.MustCompile(`Outlook-iOS/`), client: "Outlook", os: "iOS"},
		{match: regexp.MustCompile(`Outlook-Android/`), client: "Outlook", os: "Android", typ: DeviceMobile},
		// Outlook for Mac's own requests: "MacOutlook/16.62.22061100 (Intelx64 Mac OS X 12.4 (Build 21F79))".
		{match: regexp.MustCompile(`MacOutlook/`), client: "Outlook", os: "macOS", typ: DeviceDesktop},
		// Outlook desktop on Windows: "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)"
		// or an Internet Explorer agent ending "Microsoft Outlook 16.0.5422; ms-office; MSOffice 16)".
		{match: regexp.MustCompile(`Microsoft Outlook|MSOffice \d|ms-office|^Microsoft Office/`), client: "Outlook", typ: DeviceDesktop},
		// Thunderbird is a Gecko agent the general parser knows; the rule only pins it to the desktop.
		{match: regexp.MustCompile(`Thunderbird/`), client: "Thunderbird", typ: DeviceDesktop},
		// Samsung Email adds its token to the Android web view's agent.
		{match: regexp.MustCompile(`SamsungEmail/`), client: "Samsung Email", os: "Android"},
		// Windows 10/11 Mail renders in the EdgeHTML web view: "(Windows NT 10.0; Win64; x64; WebView/3.0) ...
		// Edge/18.19045"; no browser sends WebView/ with a Windows NT desktop agent.
		{match: regexp.MustCompile(`Windows NT [\d.]+;[^)]*WebView/[\d.]+\).* Edge/[\d.]+$`), client: "Windows Mail", os: "Windows", typ: DeviceDesktop},
		// Apple Mail (macOS, iOS, iPadOS) loads images in a bare WebKit view: no "Version/" or "Safari/" token
		// and nothing after "Mobile/15E148". Outlook for Mac's WebKit view sends the same agent, so it is
		// reported as Apple Mail too; no agent tells them apart.
		{match: regexp.MustCompile(`^Mozilla/5\.0 \((?:Macintosh|iPhone|iPad|iPod)[^)]*\) AppleWebKit/[\d.]+ \(KHTML, like Gecko\)(?: Mobile/\w+)?$`), client: "Apple Mail"},
	}
}

// deviceRobots recognises crawlers, previewers and scripts that name a desktop OS. The database's device
// parser knows more of them but costs ~3 ms an agent; robots without an OS are UNKNOWN anyway.
func deviceRobots() *regexp.Regexp {
	return regexp.MustCompile(`(?i)bot\b|crawl|spider|slurp|preview|scanner|headless|facebookexternalhit|python-|go-http-client|okhttp|libwww`)
}

// NewDeviceParser loads the embedded user-agent database, which takes a fraction of a second: build one
// per process.
func NewDeviceParser() (*DeviceParser, error) {
	ua, err := uaparser.New(uaparser.WithCacheSize(1)) // this type caches whole answers itself
	if err != nil {
		return nil, fmt.Errorf("load user-agent database: %w", err)
	}
	cache, err := lru.New(deviceCacheSize)
	if err != nil {
		return nil, fmt.Errorf("make device cache: %w", err)
	}
	return &DeviceParser{ua: ua, rules: emailClientRules(), robot: deviceRobots(), cache: cache}, nil
}

// Parse says what device and client a user agent belongs to; anything it cannot tell is left empty or UNKNOWN.
func (p *DeviceParser) Parse(userAgent string) Device {
	userAgent = strings.TrimSpace(userAgent)
	if len(userAgent) > deviceMaxAgent {
		userAgent = userAgent[:deviceMaxAgent]
	}
	if userAgent == "" {
		return Device{Type: DeviceUnknown}
	}
	if d, ok := p.cache.Get(userAgent); ok {
		return d.(Device)
	}
	d := p.parse(userAgent)
	p.cache.Add(strings.Clone(userAgent), d) // never pin a caller's (maybe huge) header in the cache
	return d
}

// parse does the uncached work: the email-client rules first, then the general database.
func (p *DeviceParser) parse(ua string) Device {
	var rule *deviceRule
	for i := range p.rules {
		if p.rules[i].match.MatchString(ua) {
			rule = &p.rules[i]
			break
		}
	}
	if rule != nil && rule.hides {
		return Device{Type: DeviceUnknown, Client: rule.client}
	}
	if rule != nil && rule.os != "" && rule.typ != "" {
		return Device{Type: rule.typ, OS: rule.os, Client: rule.client}
	}
	d := Device{OS: deviceOSName(p.ua.ParseOs(ua).Family)}
	if rule != nil {
		d.Client = rule.client
		if rule.os != "" {
			d.OS = rule.os
		}
		d.Type = rule.typ
	} else {
		d.Client = deviceClientName(p.ua.ParseUserAgent(ua).Family)
	}
	if d.Type == "" {
		d.Type = deviceTypeOf(ua, d.OS, rule == nil && p.robot.MatchString(ua))
	}
	return d
}

// deviceOSName uses the names people know ("macOS", not "Mac OS X") and nothing for "Other".
func deviceOSName(family string) string {
	switch family {
	case "Other", "":
		return ""
	case "Mac OS X", "Mac OS":
		return "macOS"
	case "Chrome OS":
		return "ChromeOS"
	case "Ubuntu", "Debian", "Fedora", "Red Hat", "Mint", "SUSE", "Arch Linux", "Gentoo", "CentOS":
		return "Linux"
	}
	return family
}

// deviceClientName names the clients the general database knows under another name.
func deviceClientName(family string) string {
	switch family {
	case "Other", "":
		return ""
	case "Mobile Safari UI/WKWebView":
		return "iOS web view"
	}
	return family
}

// deviceTypeOf classifies by platform: tablets by their platform's own convention (iPad, Android without
// "Mobile"), phones, then desktop operating systems; robots and the unrecognisable are UNKNOWN.
func deviceTypeOf(ua, os string, robot bool) DeviceType {
	switch {
	case robot:
		return DeviceUnknown
	case strings.Contains(ua, "iPad") || strings.Contains(ua, "Tablet"):
		return DeviceTablet
	case os == "iOS" || os == "Windows Phone" || strings.Contains(ua, "iPhone"):
		return DeviceMobile
	case os == "Android":
		if strings.Contains(ua, "Mobile") {
			return DeviceMobile
		}
		return DeviceTablet
	case strings.Contains(ua, "Mobi"):
		return DeviceMobile
	case os == "Windows" || os == "macOS" || os == "Linux" || os == "ChromeOS" || strings.HasPrefix(os, "Windows") ||
		os == "FreeBSD" || os == "OpenBSD" || os == "NetBSD" || os == "Solaris":
		return DeviceDesktop
	}
	return DeviceUnknown
}
