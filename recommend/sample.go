package recommend

import (
	"math"
	"math/rand/v2"
)

// gamma draws from Gamma(shape, 1) by Marsaglia and Tsang's method, boosting shapes below one.
func gamma(rnd *rand.Rand, shape float64) float64 {
	if shape <= 0 {
		return 0
	}
	if shape < 1 {
		u := rnd.Float64()
		for u == 0 {
			u = rnd.Float64()
		}
		return gamma(rnd, shape+1) * math.Pow(u, 1/shape)
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rnd.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rnd.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
