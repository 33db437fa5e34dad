//! [`parse_exposition`]: reads the Prometheus text format back, checking the rules a
//! scraper relies on. Tests and probes use it to read `/metrics`.

use std::collections::{BTreeMap, HashMap, HashSet};

/// One sample line: a name, its labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (for histograms, with its `_bucket`, `_sum` or `_count`).
    pub name: String,
    /// Its labels, by name.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// Whether every `(name, value)` of `labels` is among the sample's labels.
    pub fn has(&self, labels: &[(&str, &str)]) -> bool {
        labels
            .iter()
            .all(|(key, value)| self.labels.get(*key).is_some_and(|v| v == value))
    }
}

/// A parsed exposition: its samples, in order, and each family's type.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    /// Every sample line.
    pub samples: Vec<Sample>,
    /// Each family's `# TYPE` (counter, gauge, histogram, summary, untyped).
    pub types: HashMap<String, String>,
}

impl Exposition {
    /// The value of the one sample named `name` whose labels include `labels`; `None`
    /// when there is none (and when there are several, the first).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|sample| sample.name == name && sample.has(labels))
            .map(|sample| sample.value)
    }

    /// Every sample named `name`.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples
            .iter()
            .filter(move |sample| sample.name == name)
    }
}

/// Parses `text`, refusing (with the line and why) what a Prometheus scraper would not
/// take or what breaks the naming rules: a sample without a `# TYPE` for its family, a
/// counter whose name does not end in `_total`, a histogram sample other than
/// `_bucket`/`_sum`/`_count`, a bucket without `le`, a repeated series, a malformed
/// label or value.
pub fn parse_exposition(text: &str) -> Result<Exposition, String> {
    let mut exposition = Exposition::default();
    let mut seen = HashSet::new();
    for (number, line) in text.lines().enumerate() {
        let at = |why: &str| format!("line {}: {why}: {line}", number + 1);
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE") {
                let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                    return Err(at("a TYPE line needs a name and a type"));
                };
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                    return Err(at("unknown type"));
                }
                if kind == "counter" && !name.ends_with("_total") {
                    return Err(at("a counter's name must end in _total"));
                }
                if exposition
                    .types
                    .insert(name.to_owned(), kind.to_owned())
                    .is_some()
                {
                    return Err(at("a second TYPE for one family"));
                }
            }
            continue;
        }
        let sample = sample(line).map_err(|why| at(&why))?;
        let family = family_of(&sample.name, &exposition.types)
            .ok_or_else(|| at("no TYPE line for this sample's family"))?;
        if exposition.types.get(family).map(String::as_str) == Some("histogram") {
            let suffix = &sample.name[family.len()..];
            if !["_bucket", "_sum", "_count"].contains(&suffix) {
                return Err(at("a histogram sample must be _bucket, _sum or _count"));
            }
            if suffix == "_bucket" && !sample.labels.contains_key("le") {
                return Err(at("a bucket needs an le label"));
            }
        }
        if !seen.insert(format!("{}{:?}", sample.name, sample.labels)) {
            return Err(at("a series appears twice"));
        }
        exposition.samples.push(sample);
    }
    Ok(exposition)
}

/// The family a sample named `name` belongs to: itself, or for histograms and
/// summaries the name without `_bucket`, `_sum` or `_count`.
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> Option<&'a str> {
    if types.contains_key(name) {
        return Some(name);
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|suffix| name.strip_suffix(suffix))
        .find(|family| types.contains_key(*family))
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn sample(line: &str) -> Result<Sample, String> {
    let (series, value) = line
        .rsplit_once(' ')
        .ok_or_else(|| "a sample needs a value".to_owned())?;
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse()
            .map_err(|_| format!("{other:?} is not a number"))?,
    };
    let (name, labels) = match series.split_once('{') {
        None => (series, BTreeMap::new()),
        Some((name, rest)) => {
            let body = rest
                .strip_suffix('}')
                .ok_or_else(|| "labels must close with }".to_owned())?;
            (name, labels(body)?)
        }
    };
    if !valid_name(name) {
        return Err(format!("{name:?} is not a metric name"));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn labels(mut body: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    while !body.is_empty() {
        let (key, rest) = body
            .split_once("=\"")
            .ok_or_else(|| "a label needs =\"value\"".to_owned())?;
        if !valid_name(key) || key.contains(':') {
            return Err(format!("{key:?} is not a label name"));
        }
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("a label value must close with \"".to_owned()),
                Some((at, '"')) => break at,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    _ => return Err("a label value has a bad escape".to_owned()),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(key.to_owned(), value).is_some() {
            return Err(format!("label {key} appears twice"));
        }
        body = &rest[end + 1..];
        body = body.strip_prefix(',').unwrap_or(body);
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_counters_gauges_and_histograms() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\na_total{route=\"/x\",q=\"a\\\"b\"} 3\n\
                    # TYPE g gauge\ng 1.5\n# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\n";
        let exposition = parse_exposition(text).expect("valid");
        assert_eq!(exposition.value("a_total", &[("q", "a\"b")]), Some(3.0));
        assert_eq!(exposition.value("g", &[]), Some(1.5));
        assert_eq!(exposition.value("h_bucket", &[("le", "+Inf")]), Some(2.0));
        assert_eq!(exposition.named("h_bucket").count(), 2);
    }

    #[test]
    fn refuses_what_breaks_the_rules() {
        for (text, why) in [
            ("# TYPE a counter\na 1\n", "_total"),
            ("a 1\n", "no TYPE"),
            ("# TYPE g gauge\ng{x=\"1\"} one\n", "not a number"),
            ("# TYPE g gauge\ng{x=\"1} 1\n", "close"),
            ("# TYPE g gauge\ng 1\ng 2\n", "twice"),
            ("# TYPE h histogram\nh_total 1\n", "no TYPE"),
            ("# TYPE h histogram\nh_bucket 1\n", "le"),
            ("# TYPE g gauge\n# TYPE g gauge\n", "second TYPE"),
            ("# TYPE g gauge\n1g 1\n", "metric name"),
        ] {
            let error = parse_exposition(text).expect_err(text);
            assert!(error.contains(why), "{text:?}: {error}");
        }
    }
}
