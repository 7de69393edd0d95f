package recommend

import (
	"math"
	"math/rand/v2"
	"testing"
)

// binomialTail is I_x(a, b) for whole a and b through its binomial identity, an independent reference.
func binomialTail(x float64, a, b int) float64 {
	n := a + b - 1
	total := 0.0
	for j := a; j <= n; j++ {
		lc := lgammaInt(n+1) - lgammaInt(j+1) - lgammaInt(n-j+1)
		total += math.Exp(lc + float64(j)*math.Log(x) + float64(n-j)*math.Log1p(-x))
	}
	return total
}

func lgammaInt(n int) float64 { v, _ := math.Lgamma(float64(n)); return v }

func TestBetaCDF(t *testing.T) {
	tests := []struct {
		name string
		x    float64
		a, b int
	}{
		{"uniform", 0.3, 1, 1},
		{"small counts", 0.4, 2, 3},
		{"skewed", 0.05, 3, 40},
		{"upper side", 0.9, 20, 4},
		{"large counts", 0.31, 300, 700},
		{"far tail", 0.2, 300, 700},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, want := betaCDF(tc.x, float64(tc.a), float64(tc.b)), binomialTail(tc.x, tc.a, tc.b)
			if math.Abs(got-want) > 1e-10 {
				t.Errorf("betaCDF(%v, %d, %d) = %.15g, want %.15g", tc.x, tc.a, tc.b, got, want)
			}
		})
	}
	t.Run("arcsine", func(t *testing.T) { // Beta(1/2, 1/2) has CDF 2/pi asin(sqrt x)
		for _, x := range []float64{0.01, 0.25, 0.5, 0.8, 0.999} {
			if got, want := betaCDF(x, 0.5, 0.5), 2/math.Pi*math.Asin(math.Sqrt(x)); math.Abs(got-want) > 1e-10 {
				t.Errorf("betaCDF(%v, 0.5, 0.5) = %v, want %v", x, got, want)
			}
		}
	})
}

func TestBetaQuantile(t *testing.T) {
	tests := []struct {
		name    string
		p, a, b float64
		want    float64
	}{
		{"uniform", 0.05, 1, 1, 0.05},
		{"symmetric median", 0.5, 7, 7, 0.5},
		{"power law", 0.95, 3, 1, math.Pow(0.95, 1.0/3)},              // CDF x^a
		{"reflected power law", 0.05, 1, 4, 1 - math.Pow(0.95, 0.25)}, // CDF 1-(1-x)^b
		{"arcsine", 0.9, 0.5, 0.5, math.Pow(math.Sin(0.9*math.Pi/2), 2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := betaQuantile(tc.p, tc.a, tc.b); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("betaQuantile(%v, %v, %v) = %.12g, want %.12g", tc.p, tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestProbGreater(t *testing.T) {
	tests := []struct {
		name           string
		a1, b1, a2, b2 float64
		want           float64
	}{
		{"identical", 5, 9, 5, 9, 0.5},
		{"one more success", 2, 1, 1, 1, 2.0 / 3}, // integral of 2x * x
		{"one more failure", 1, 1, 1, 2, 2.0 / 3}, // integral of 1-(1-x)^2
		{"mirror", 1, 1, 2, 1, 1.0 / 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := probGreater(tc.a1, tc.b1, tc.a2, tc.b2); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("probGreater = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("agrees with sampling", func(t *testing.T) {
		rnd := rand.New(rand.NewPCG(1, 2))
		cases := [][4]float64{{31, 71, 21, 81}, {4, 300, 9, 290}, {2500, 2600, 2400, 2700}, {3000, 40, 2950, 45}}
		for _, c := range cases {
			const n = 200000
			wins := 0
			for range n {
				x := gamma(rnd, c[0])
				x /= x + gamma(rnd, c[1])
				y := gamma(rnd, c[2])
				y /= y + gamma(rnd, c[3])
				if x > y {
					wins++
				}
			}
			if got, mc := probGreater(c[0], c[1], c[2], c[3]), float64(wins)/n; math.Abs(got-mc) > 0.005 {
				t.Errorf("probGreater%v = %v, sampling says %v", c, got, mc)
			}
		}
	})
}

func FuzzBetaQuantile(f *testing.F) {
	f.Add(0.05, 3.0, 10.0)
	f.Add(0.999, 1000.0, 2.0)
	f.Add(1e-9, 0.5, 0.5)
	f.Fuzz(func(t *testing.T, p, a, b float64) {
		if !(p > 0 && p < 1) || !(a >= 0.5 && a <= 1e5) || !(b >= 0.5 && b <= 1e5) {
			return
		}
		x := betaQuantile(p, a, b)
		if !(x >= 0 && x <= 1) {
			t.Fatalf("betaQuantile(%v, %v, %v) = %v outside [0, 1]", p, a, b, x)
		}
		// The CDF is monotone: just below and above the quantile it brackets p.
		lo, hi := betaCDF(max(0, x-1e-9), a, b), betaCDF(min(1, x+1e-9), a, b)
		if lo > p+1e-9 || hi < p-1e-9 {
			t.Fatalf("betaQuantile(%v, %v, %v) = %v, but CDF around it is [%v, %v]", p, a, b, x, lo, hi)
		}
	})
}
