//! Exact shortest round-trip decimal digits for binary floating point,
//! matching PostgreSQL's Ryu build (`acceptBounds = false`).

/// Minimal unsigned bignum (little-endian base 2^32 limbs) for exact
/// shortest-digit generation.
#[derive(Clone, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(v: u64) -> Self {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for limb in &mut self.0 {
            let v = u64::from(*limb) * u64::from(m) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }

    fn shl(&mut self, bits: u32) {
        for _ in 0..bits / 32 {
            self.0.insert(0, 0);
        }
        let r = bits % 32;
        if r > 0 {
            let mut carry = 0u32;
            for limb in &mut self.0 {
                let v = (*limb << r) | carry;
                carry = *limb >> (32 - r);
                *limb = v;
            }
            if carry > 0 {
                self.0.push(carry);
            }
        }
        self.trim();
    }

    fn add(&self, o: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len().max(o.0.len()) + 1);
        let mut carry = 0u64;
        for i in 0..self.0.len().max(o.0.len()) {
            let v = u64::from(*self.0.get(i).unwrap_or(&0))
                + u64::from(*o.0.get(i).unwrap_or(&0))
                + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        out.push(carry as u32);
        let mut b = Big(out);
        b.trim();
        b
    }

    /// `self -= o`; requires `self >= o`.
    fn sub(&mut self, o: &Big) {
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let v = i64::from(self.0[i]) - i64::from(*o.0.get(i).unwrap_or(&0)) - borrow;
            borrow = i64::from(v < 0);
            self.0[i] = v.rem_euclid(1 << 32) as u32;
        }
        self.trim();
    }

    fn cmp(&self, o: &Big) -> std::cmp::Ordering {
        self.0
            .len()
            .cmp(&o.0.len())
            .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }
}

/// Shortest decimal digits strictly inside the rounding interval of
/// `f * 2^e` (Ryu with `acceptBounds = false`, as PG builds it), closest
/// to the exact value, ties to even. Returns (digits, k) with
/// value = 0.digits * 10^k. `boundary` marks a power of two whose lower
/// neighbour is half as far (Burger & Dybvig free-format algorithm).
pub(crate) fn shortest(f: u64, e: i32, boundary: bool) -> (Vec<u8>, i32) {
    use std::cmp::Ordering::*;
    let (mut r, mut s, mut mp, mut mm) = (
        Big::from_u64(f),
        Big::from_u64(1),
        Big::from_u64(1),
        Big::from_u64(1),
    );
    let extra = u32::from(boundary) + 1;
    if e >= 0 {
        r.shl(e as u32 + extra);
        mp.shl(e as u32 + extra - 1);
        mm.shl(e as u32);
        s.shl(extra);
    } else {
        r.shl(extra);
        s.shl(e.unsigned_abs() + extra);
        mp.shl(extra - 1);
    }
    let est = ((f as f64).log10() + f64::from(e) * std::f64::consts::LOG10_2).ceil() as i32;
    let mut k = est;
    for _ in 0..k.unsigned_abs() {
        if k >= 0 {
            s.mul_small(10);
        } else {
            r.mul_small(10);
            mp.mul_small(10);
            mm.mul_small(10);
        }
    }
    while r.add(&mp).cmp(&s) == Greater {
        s.mul_small(10);
        k += 1;
    }
    loop {
        let mut high = r.add(&mp);
        high.mul_small(10);
        if high.cmp(&s) == Greater {
            break;
        }
        r.mul_small(10);
        mp.mul_small(10);
        mm.mul_small(10);
        k -= 1;
    }
    let mut digits = Vec::new();
    loop {
        r.mul_small(10);
        mp.mul_small(10);
        mm.mul_small(10);
        let mut d = 0u8;
        while r.cmp(&s) != Less {
            r.sub(&s);
            d += 1;
        }
        let low_ok = r.cmp(&mm) == Less;
        let high_ok = r.add(&mp).cmp(&s) == Greater;
        if !low_ok && !high_ok {
            digits.push(d);
            continue;
        }
        let up = match (low_ok, high_ok) {
            (true, false) => false,
            (false, true) => true,
            _ => {
                let mut twice = r.clone();
                twice.shl(1);
                match twice.cmp(&s) {
                    Less => false,
                    Greater => true,
                    Equal => d % 2 == 1,
                }
            }
        };
        digits.push(d + u8::from(up));
        break;
    }
    // Propagate a possible carry out of the last digit.
    let mut i = digits.len();
    while i > 0 && digits[i - 1] == 10 {
        digits[i - 1] = 0;
        if i == 1 {
            digits.insert(0, 1);
            k += 1;
        } else {
            digits[i - 2] += 1;
        }
        i -= 1;
    }
    while digits.len() > 1 && digits.last() == Some(&0) {
        digits.pop();
    }
    (digits, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(v: f64) -> (String, i32) {
        let bits = v.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i32;
        let m = bits & ((1 << 52) - 1);
        let (d, k) = shortest(m | (1 << 52), biased - 1075, m == 0 && biased > 1);
        (d.iter().map(|d| char::from(b'0' + d)).collect(), k)
    }

    #[test]
    fn known_digits() {
        assert_eq!(digits(1.0), ("1".to_string(), 1));
        assert_eq!(digits(0.1), ("1".to_string(), 0));
        assert_eq!(digits(123.456), ("123456".to_string(), 3));
        assert_eq!(digits(f64::MAX), ("17976931348623157".to_string(), 309));
        assert_eq!(
            digits(2f64.powi(-1022)),
            ("22250738585072014".to_string(), -307)
        );
    }

    #[test]
    fn bignum_ops() {
        let mut a = Big::from_u64(u64::MAX);
        a.shl(40);
        let b = a.add(&Big::from_u64(1));
        assert_eq!(b.cmp(&a), std::cmp::Ordering::Greater);
        let mut c = b.clone();
        c.sub(&a);
        assert!(c == Big::from_u64(1));
        c.mul_small(10);
        assert!(c == Big::from_u64(10));
    }
}
