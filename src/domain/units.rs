//! Physical quantities in metadata filters (`metadata.temperature[gte]=1000 K`): which unit
//! spellings are accepted and how each converts to SI, so values written in different units
//! compare as the same physical quantity.
//!
//! The table here is the only definition of the units: the database converts stored
//! quantities with a lookup table seeded from [`all`], so a filter and the values it is
//! compared with cannot disagree on a conversion.
//!
//! A quantity is written `<number><optional whitespace><unit>`, as a regular expression
//! `^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*<symbol>$` after trimming. Symbols
//! are matched exactly and case-sensitively: SI tells `mPa` from `MPa` and `Pa` from `pA` by
//! case alone, so no case folding is safe.

use std::f64::consts::PI;

/// What a unit measures. Only quantities of one dimension compare with each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    Temperature,
    Pressure,
    Length,
    Time,
    Energy,
    Frequency,
    Voltage,
    Current,
    Power,
    Mass,
    Angle,
    Resistance,
}

impl Dimension {
    /// Every dimension, in declaration order.
    pub const ALL: &[Dimension] = &[
        Dimension::Temperature,
        Dimension::Pressure,
        Dimension::Length,
        Dimension::Time,
        Dimension::Energy,
        Dimension::Frequency,
        Dimension::Voltage,
        Dimension::Current,
        Dimension::Power,
        Dimension::Mass,
        Dimension::Angle,
        Dimension::Resistance,
    ];

    /// Lower snake case name, e.g. `"temperature"` (for messages and the SQL table).
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Temperature => "temperature",
            Dimension::Pressure => "pressure",
            Dimension::Length => "length",
            Dimension::Time => "time",
            Dimension::Energy => "energy",
            Dimension::Frequency => "frequency",
            Dimension::Voltage => "voltage",
            Dimension::Current => "current",
            Dimension::Power => "power",
            Dimension::Mass => "mass",
            Dimension::Angle => "angle",
            Dimension::Resistance => "resistance",
        }
    }

    /// Symbol of the SI unit values are compared in, e.g. `"K"`; always an accepted spelling
    /// whose factor is 1 and offset 0.
    pub fn si_symbol(self) -> &'static str {
        match self {
            Dimension::Temperature => "K",
            Dimension::Pressure => "Pa",
            Dimension::Length => "m",
            Dimension::Time => "s",
            Dimension::Energy => "J",
            Dimension::Frequency => "Hz",
            Dimension::Voltage => "V",
            Dimension::Current => "A",
            Dimension::Power => "W",
            Dimension::Mass => "kg",
            Dimension::Angle => "rad",
            Dimension::Resistance => "Ω",
        }
    }
}

/// One accepted spelling of a unit and its affine conversion to SI.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit {
    /// The spelling as accepted, e.g. `"mbar"`.
    pub symbol: &'static str,
    pub dimension: Dimension,
    /// SI value of one unit, e.g. 100 for `mbar`.
    pub factor: f64,
    /// Added after scaling; non-zero only for °C and °F, whose zero is not absolute zero.
    pub offset: f64,
}

impl Unit {
    /// `value` in this unit, expressed in the dimension's SI unit.
    pub fn to_si(self, value: f64) -> f64 {
        value * self.factor + self.offset
    }
}

/// A filter value that reads as a number with a unit, but a unit not in [`all`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown unit '{0}'")]
pub struct UnknownUnit(pub String);

/// Every accepted spelling with its conversion, for seeding a SQL lookup table (the database
/// converts stored quantities with the same table, so Rust is the one source). Each symbol
/// [`lookup`] accepts appears exactly once.
pub fn all() -> Vec<Unit> {
    units().collect()
}

/// The unit spelled exactly `symbol` (case-sensitive, surrounding whitespace ignored).
pub fn lookup(symbol: &str) -> Option<Unit> {
    let symbol = symbol.trim();
    units().find(|unit| unit.symbol == symbol)
}

/// A filter value read as a quantity: "1000 K", "750degC", "0.1 mbar", "-5e-3 Torr", "20 eV",
/// "300 °C".
///
/// `Ok(None)` when the text is not `<number><optional whitespace><unit-looking suffix>` at all
/// ("PHI", "42", "abc 3", "42%", "3 m s"), and also when the number or its SI value is not
/// finite, since such a value cannot be compared. `Ok(Some((value, unit)))` for a known unit,
/// `value` as written (not yet in SI). `Err(UnknownUnit(suffix))` when a finite number is
/// followed by a unit-looking suffix that is not a known unit ("12 parsecs", "5 m/s"), so a
/// mistyped unit is reported rather than silently compared as text.
///
/// Unit-looking: 1 to [`MAX_SUFFIX_CHARS`] characters, each a letter (any script, so µ, Å and
/// Ω count), `°`, `℃`, `℉` or `/`; digits, spaces and other punctuation inside mean the text
/// is not a quantity.
pub fn parse_quantity(text: &str) -> Result<Option<(f64, Unit)>, UnknownUnit> {
    let text = text.trim();
    let number_len = number_prefix_len(text);
    if number_len == 0 {
        return Ok(None);
    }
    let (number, rest) = text.split_at(number_len);
    let suffix = rest.trim_start();
    if !looks_like_unit(suffix) {
        return Ok(None);
    }
    let Ok(value) = number.parse::<f64>() else {
        return Ok(None);
    };
    if !value.is_finite() {
        return Ok(None);
    }
    match lookup(suffix) {
        Some(unit) if unit.to_si(value).is_finite() => Ok(Some((value, unit))),
        Some(_) => Ok(None),
        None => Err(UnknownUnit(suffix.to_owned())),
    }
}

/// Longest suffix still read as a unit: the longest accepted symbol ("angstrom") has 8
/// characters; beyond 12 the text is more likely prose than a mistyped unit.
pub const MAX_SUFFIX_CHARS: usize = 12;

/// Bytes of the leading decimal number (`[+-]?(d+.?d*|.d+)([eE][+-]?d+)?`), 0 if none. Only
/// ASCII digits: `inf`, `NaN` and hex, which `f64::from_str` partly accepts, are not numbers
/// a person writes with a unit.
fn number_prefix_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let digits_from = |start: usize| {
        bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut end = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let integer = digits_from(end);
    end += integer;
    let mut fraction = 0;
    if bytes.get(end) == Some(&b'.') {
        fraction = digits_from(end + 1);
        end += 1 + fraction;
    }
    if integer + fraction == 0 {
        return 0;
    }
    // An exponent only when digits follow, so the `e` of "5eV" stays with the unit.
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        let exponent = digits_from(end + 1 + sign);
        if exponent > 0 {
            end += 1 + sign + exponent;
        }
    }
    end
}

fn looks_like_unit(suffix: &str) -> bool {
    let mut chars = 0;
    for c in suffix.chars() {
        chars += 1;
        if chars > MAX_SUFFIX_CHARS || !(c.is_alphabetic() || matches!(c, '°' | '℃' | '℉' | '/'))
        {
            return false;
        }
    }
    chars > 0
}

fn units() -> impl Iterator<Item = Unit> {
    UNITS.iter().flat_map(|group| group.iter().copied())
}

/// `mantissa` × 10^`exponent`, dividing for negative exponents so that e.g. `mm` is exactly
/// the double nearest 0.001 rather than 1 × 1e-3 with a second rounding.
const fn scaled(mantissa: f64, exponent: i32) -> f64 {
    let mut power = 1.0;
    let mut i = 0;
    while i < exponent.unsigned_abs() {
        power *= 10.0;
        i += 1;
    }
    if exponent < 0 {
        mantissa / power
    } else {
        mantissa * power
    }
}

const fn linear(symbol: &'static str, dimension: Dimension, factor: f64) -> Unit {
    Unit {
        symbol,
        dimension,
        factor,
        offset: 0.0,
    }
}

/// `prefixed!(Dimension, "base", mantissa, exponent; "prefix" power, ...)`: one unit per
/// prefix, spelled prefix + base, worth mantissa × 10^(exponent + power) in SI. `"" 0` is the
/// base unit itself.
macro_rules! prefixed {
    ($dim:ident, $base:literal, $mantissa:expr, $exponent:expr;
     $($prefix:literal $power:expr),+ $(,)?) => {
        [$(linear(
            concat!($prefix, $base),
            Dimension::$dim,
            scaled($mantissa, $exponent + $power),
        )),+]
    };
}

/// The SI prefixes offered for most units: p n µ u m k M G T, with micro also spelled with
/// the Greek letter μ (U+03BC, what Greek keyboards and NFKC produce) beside the micro sign µ
/// (U+00B5) and the ASCII stand-in u.
macro_rules! si_prefixed {
    ($dim:ident, $base:literal, $mantissa:expr, $exponent:expr) => {
        prefixed!($dim, $base, $mantissa, $exponent;
            "p" -12, "n" -9, "µ" -6, "\u{3bc}" -6, "u" -6, "m" -3, "" 0,
            "k" 3, "M" 6, "G" 9, "T" 12)
    };
}

const ELEMENTARY_CHARGE: f64 = 1.602_176_634e-19;
const ATMOSPHERE: f64 = 101_325.0;
const FAHRENHEIT: f64 = 5.0 / 9.0;

/// Every accepted spelling, grouped by base unit. A test checks that no spelling repeats.
static UNITS: &[&[Unit]] = &[
    &si_prefixed!(Temperature, "K", 1.0, 0),
    &[
        Unit {
            symbol: "degC",
            dimension: Dimension::Temperature,
            factor: 1.0,
            offset: 273.15,
        },
        Unit {
            symbol: "°C",
            dimension: Dimension::Temperature,
            factor: 1.0,
            offset: 273.15,
        },
        // U+2103 DEGREE CELSIUS, one character, as some keyboards and PDFs give it.
        Unit {
            symbol: "℃",
            dimension: Dimension::Temperature,
            factor: 1.0,
            offset: 273.15,
        },
        // (°F + 459.67) × 5/9 K, split into factor and offset.
        Unit {
            symbol: "degF",
            dimension: Dimension::Temperature,
            factor: FAHRENHEIT,
            offset: 459.67 * FAHRENHEIT,
        },
        Unit {
            symbol: "°F",
            dimension: Dimension::Temperature,
            factor: FAHRENHEIT,
            offset: 459.67 * FAHRENHEIT,
        },
        Unit {
            symbol: "℉",
            dimension: Dimension::Temperature,
            factor: FAHRENHEIT,
            offset: 459.67 * FAHRENHEIT,
        },
    ],
    &si_prefixed!(Pressure, "Pa", 1.0, 0),
    // Hectopascal, the meteorologists' millibar; the only use of the h prefix.
    &[linear("hPa", Dimension::Pressure, 100.0)],
    // No Mbar: megabar is rare and one case away from the common mbar.
    &prefixed!(Pressure, "bar", 1.0, 5;
        "µ" -6, "\u{3bc}" -6, "u" -6, "m" -3, "" 0, "k" 3),
    &[
        linear("Torr", Dimension::Pressure, ATMOSPHERE / 760.0),
        linear("mTorr", Dimension::Pressure, ATMOSPHERE / 760.0 / 1000.0),
        // Lower case, as the unit's name is often written in vacuum logs.
        linear("torr", Dimension::Pressure, ATMOSPHERE / 760.0),
        linear("mtorr", Dimension::Pressure, ATMOSPHERE / 760.0 / 1000.0),
        linear("atm", Dimension::Pressure, ATMOSPHERE),
        // Conventional millimetre of mercury: 13.5951 g/cm³ × 9.80665 m/s² × 1 mm.
        linear("mmHg", Dimension::Pressure, 133.322_387_415),
        // Pound-force per square inch: 0.45359237 kg × 9.80665 m/s² / (0.0254 m)².
        linear(
            "psi",
            Dimension::Pressure,
            0.453_592_37 * 9.806_65 / (0.0254 * 0.0254),
        ),
    ],
    &prefixed!(Length, "m", 1.0, 0;
        "p" -12, "n" -9, "µ" -6, "\u{3bc}" -6, "u" -6, "m" -3, "c" -2, "" 0,
        "k" 3, "M" 6, "G" 9, "T" 12),
    &[
        linear("Å", Dimension::Length, 1e-10),
        // U+212B ANGSTROM SIGN, which Unicode normalises to the letter Å (U+00C5) above.
        linear("\u{212b}", Dimension::Length, 1e-10),
        linear("angstrom", Dimension::Length, 1e-10),
    ],
    // Only the prefixes below a second: ks or Ms are not how durations are written.
    &prefixed!(Time, "s", 1.0, 0;
        "p" -12, "n" -9, "µ" -6, "\u{3bc}" -6, "u" -6, "m" -3, "" 0),
    &[
        linear("min", Dimension::Time, 60.0),
        linear("h", Dimension::Time, 3600.0),
    ],
    &si_prefixed!(Energy, "eV", ELEMENTARY_CHARGE, 0),
    &si_prefixed!(Energy, "J", 1.0, 0),
    &si_prefixed!(Frequency, "Hz", 1.0, 0),
    &si_prefixed!(Voltage, "V", 1.0, 0),
    &si_prefixed!(Current, "A", 1.0, 0),
    &si_prefixed!(Power, "W", 1.0, 0),
    // The gram carries the prefixes, the SI unit is the kilogram.
    &si_prefixed!(Mass, "g", 1.0, -3),
    // Small angles only: krad and Mrad read as doses of the radiation unit rad.
    &prefixed!(Angle, "rad", 1.0, 0;
        "µ" -6, "\u{3bc}" -6, "u" -6, "m" -3, "" 0),
    &[
        linear("deg", Dimension::Angle, PI / 180.0),
        linear("°", Dimension::Angle, PI / 180.0),
    ],
    &si_prefixed!(Resistance, "Ω", 1.0, 0),
    // U+2126 OHM SIGN, which Unicode normalises to the letter Ω (U+03A9) above.
    &prefixed!(Resistance, "\u{2126}", 1.0, 0; "m" -3, "" 0, "k" 3, "M" 6, "G" 9),
    &prefixed!(Resistance, "ohm", 1.0, 0; "m" -3, "" 0, "k" 3, "M" 6, "G" 9),
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn si(text: &str) -> f64 {
        let (value, unit) = parse_quantity(text).unwrap().unwrap();
        unit.to_si(value)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
    }

    #[test]
    fn seven_hundred_fifty_degc_is_at_least_a_thousand_kelvin_and_seven_hundred_is_not() {
        assert!(si("750 degC") >= si("1000 K"));
        assert!(si("700 degC") < si("1000 K"));
        assert!(close(si("750degC"), 1023.15));
    }

    #[test]
    fn a_tenth_of_a_millibar_is_ten_pascal() {
        assert!(close(si("0.1 mbar"), si("10 Pa")));
        assert!(close(si("0.1 mbar"), 10.0));
    }

    #[test]
    fn one_torr_is_about_133_322_pascal() {
        assert!((si("1 Torr") - 133.322).abs() < 1e-3);
        assert!(close(si("1 mTorr") * 1000.0, si("1 Torr")));
        assert!(close(si("760 Torr"), si("1 atm")));
    }

    #[test]
    fn one_angstrom_is_a_tenth_of_a_nanometre() {
        assert!(close(si("1 Å"), si("0.1 nm")));
        assert!(close(si("1 angstrom"), si("0.1 nm")));
        assert!(close(si("1 \u{212b}"), si("0.1 nm")));
    }

    #[test]
    fn one_hour_is_3600_seconds() {
        assert!(close(si("1 h"), si("3600 s")));
        assert!(close(si("1 min"), 60.0));
        assert!(close(si("1 ms"), 1e-3));
    }

    #[test]
    fn one_electronvolt_is_1_602176634e_minus_19_joule() {
        assert!(close(si("1 eV"), 1.602_176_634e-19));
        assert!(close(si("1 keV"), 1.602_176_634e-16));
        assert!(close(si("20eV"), 20.0 * si("1 eV")));
    }

    #[test]
    fn fahrenheit_meets_celsius_at_minus_forty_and_water_boils_at_212() {
        assert!(close(si("-40 °F"), si("-40 °C")));
        assert!(close(si("32 degF"), 273.15));
        assert!(close(si("212 ℉"), si("100 ℃")));
    }

    #[test]
    fn parsecs_and_furlongs_are_unknown_units() {
        assert_eq!(
            parse_quantity("12 parsecs"),
            Err(UnknownUnit("parsecs".to_owned()))
        );
        assert_eq!(
            parse_quantity("3 furlongs"),
            Err(UnknownUnit("furlongs".to_owned()))
        );
        assert_eq!(parse_quantity("5 m/s"), Err(UnknownUnit("m/s".to_owned())));
    }

    #[test]
    fn words_bare_numbers_and_empty_text_are_not_quantities() {
        for text in [
            "PHI",
            "42",
            "",
            "   ",
            "abc 3",
            "-",
            ".",
            "e5 K",
            "42%",
            "3 m s",
            "2024-01-01",
            "1.2.3",
            "5 m2",
            "0x1F",
            "inf K",
            "NaN K",
            "3 averyveryverylongword",
        ] {
            assert_eq!(parse_quantity(text), Ok(None), "{text:?}");
        }
    }

    #[test]
    fn numbers_too_large_to_compare_are_not_quantities() {
        assert_eq!(parse_quantity("1e400 K"), Ok(None));
        assert_eq!(parse_quantity("1e400 parsecs"), Ok(None));
        // Finite as written, infinite in SI.
        assert_eq!(parse_quantity("1e305 TPa"), Ok(None));
    }

    #[test]
    fn the_filter_examples_parse_with_or_without_a_space() {
        assert_eq!(
            parse_quantity("1000 K"),
            Ok(Some((1000.0, lookup("K").unwrap())))
        );
        assert_eq!(
            parse_quantity(" 750degC "),
            Ok(Some((750.0, lookup("degC").unwrap())))
        );
        assert_eq!(
            parse_quantity("-5e-3 Torr"),
            Ok(Some((-5e-3, lookup("Torr").unwrap())))
        );
        assert_eq!(
            parse_quantity("300 °C"),
            Ok(Some((300.0, lookup("°C").unwrap())))
        );
        assert_eq!(
            parse_quantity("+.5E+3\u{a0}Pa"),
            Ok(Some((500.0, lookup("Pa").unwrap())))
        );
        assert_eq!(parse_quantity("5.m"), Ok(Some((5.0, lookup("m").unwrap()))));
    }

    #[test]
    fn case_matters_and_look_alike_spellings_stay_apart() {
        assert_eq!(lookup("Pa").unwrap().dimension, Dimension::Pressure);
        assert_eq!(lookup("pA").unwrap().dimension, Dimension::Current);
        assert_eq!(lookup("PA"), None);
        assert_eq!(parse_quantity("5 PA"), Err(UnknownUnit("PA".to_owned())));
        assert!(close(lookup("mm").unwrap().factor, 1e-3));
        assert!(close(lookup("Mm").unwrap().factor, 1e6));
        assert_eq!(lookup("min").unwrap().dimension, Dimension::Time);
        assert!(close(lookup("ms").unwrap().factor, 1e-3));
        assert_eq!(lookup("°").unwrap().dimension, Dimension::Angle);
        assert_eq!(lookup("Mbar"), None);
        for micro in ["µm", "\u{3bc}m", "um"] {
            assert!(close(lookup(micro).unwrap().factor, 1e-6), "{micro}");
        }
        assert_eq!(lookup(" K "), lookup("K"));
    }

    #[test]
    fn every_unit_in_all_round_trips_through_lookup_and_parse_quantity() {
        for unit in all() {
            assert_eq!(lookup(unit.symbol), Some(unit), "{}", unit.symbol);
            assert_eq!(
                parse_quantity(&format!("2 {}", unit.symbol)),
                Ok(Some((2.0, unit))),
                "{}",
                unit.symbol
            );
            assert!(unit.factor.is_finite() && unit.factor > 0.0);
            assert!(unit.offset.is_finite());
        }
    }

    #[test]
    fn all_has_no_duplicate_symbol() {
        let units = all();
        let symbols: HashSet<&str> = units.iter().map(|unit| unit.symbol).collect();
        assert_eq!(symbols.len(), units.len());
    }

    #[test]
    fn every_dimension_has_units_and_its_si_unit_is_worth_exactly_one() {
        for &dimension in Dimension::ALL {
            let unit = lookup(dimension.si_symbol()).unwrap();
            assert_eq!(unit.dimension, dimension);
            assert_eq!((unit.factor, unit.offset), (1.0, 0.0), "{dimension:?}");
        }
        let names: HashSet<&str> = Dimension::ALL.iter().map(|d| d.name()).collect();
        assert_eq!(names.len(), Dimension::ALL.len());
        assert!(all().iter().all(|u| Dimension::ALL.contains(&u.dimension)));
    }
}
