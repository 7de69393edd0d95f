package recommend

import (
	"math"
)

// lbeta is the log of the Beta function.
func lbeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// betaCDF is the regularized incomplete beta function I_x(a, b), by Lentz's continued fraction on
// the side of the mean where it converges fast.
func betaCDF(x, a, b float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	front := math.Exp(a*math.Log(x) + b*math.Log1p(-x) - lbeta(a, b))
	if x < (a+1)/(a+b+2) {
		return front * betaFraction(x, a, b) / a
	}
	return 1 - front*betaFraction(1-x, b, a)/b
}

func betaFraction(x, a, b float64) float64 {
	const (
		maxIter = 100000
		eps     = 1e-15
		tiny    = 1e-300
	)
	clamp := func(v float64) float64 {
		if math.Abs(v) < tiny {
			return tiny
		}
		return v
	}
	c, d := 1.0, 1/clamp(1-(a+b)*x/(a+1))
	h := d
	for m := 1; m <= maxIter; m++ {
		fm := float64(m)
		num := fm * (b - fm) * x / ((a + 2*fm - 1) * (a + 2*fm))
		d = 1 / clamp(1+num*d)
		c = clamp(1 + num/c)
		h *= d * c
		num = -(a + fm) * (a + b + fm) * x / ((a + 2*fm) * (a + 2*fm + 1))
		d = 1 / clamp(1+num*d)
		c = clamp(1 + num/c)
		step := d * c
		h *= step
		if math.Abs(step-1) < eps {
			break
		}
	}
	return h
}

// betaQuantile inverts betaCDF by bisection, which cannot diverge; 80 halvings reach float precision.
func betaQuantile(p, a, b float64) float64 {
	switch {
	case p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	lo, hi := 0.0, 1.0
	for range 80 {
		mid := (lo + hi) / 2
		if mid == lo || mid == hi {
			break
		}
		if betaCDF(mid, a, b) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// probGreater is P(X > Y) for X ~ Beta(a1, b1) and Y ~ Beta(a2, b2) with whole-number parameters (the
// uniform prior plus counts), summed exactly over the smallest parameter; when every parameter exceeds a
// few thousand the normal approximation of the difference is used, accurate there to well under 0.1%.
func probGreater(a1, b1, a2, b2 float64) float64 {
	switch m := min(a1, b1, a2, b2); {
	case m > 2000:
		m1, m2 := a1/(a1+b1), a2/(a2+b2)
		v1 := a1 * b1 / ((a1 + b1) * (a1 + b1) * (a1 + b1 + 1))
		v2 := a2 * b2 / ((a2 + b2) * (a2 + b2) * (a2 + b2 + 1))
		return 0.5 * math.Erfc(-(m1-m2)/math.Sqrt(2*(v1+v2)))
	case m == a1:
		return exactGreater(a1, b1, a2, b2)
	case m == a2:
		return 1 - exactGreater(a2, b2, a1, b1)
	case m == b2: // X > Y exactly when 1-Y > 1-X
		return exactGreater(b2, a2, b1, a1)
	default:
		return 1 - exactGreater(b1, a1, b2, a2)
	}
}

// exactGreater sums P(X > Y) = sum over i < a1 of B(a2+i, b1+b2) / ((b1+i) B(1+i, b1) B(a2, b2)).
func exactGreater(a1, b1, a2, b2 float64) float64 {
	base := lbeta(a2, b2)
	total := 0.0
	for i := 0.0; i < a1; i++ {
		total += math.Exp(lbeta(a2+i, b1+b2) - math.Log(b1+i) - lbeta(1+i, b1) - base)
	}
	return min(max(total, 0), 1)
}
