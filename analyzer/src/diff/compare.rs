//! Two fact sets compared: a subject only in OLD is removed, only in NEW added, in
//! both compared field by field. The result is sorted by category, subject, field.

use super::facts::{Entity, Facts};
use super::severity;
use super::{Category, Change, ChangeKind};

/// Every difference between `old` and `new`, sorted.
pub fn compare(old: &Facts, new: &Facts) -> Vec<Change> {
    let mut out = Vec::new();
    for (key, o) in old {
        match new.get(key) {
            Some(n) => fields(key, o, n, &mut out),
            None if !folded(o, new) => out.push(whole(key, ChangeKind::Removed, o)),
            None => {}
        }
    }
    for (key, n) in new {
        if !old.contains_key(key) && !folded(n, old) {
            out.push(whole(key, ChangeKind::Added, n));
        }
    }
    out.sort_by(|a, b| (a.category, &a.subject, &a.field).cmp(&(b.category, &b.subject, &b.field)));
    out
}

/// Whether `e` is part of a subject the other side does not have (that subject's
/// own entry reports it).
fn folded(e: &Entity, other: &Facts) -> bool {
    e.parent.as_ref().is_some_and(|p| !other.contains_key(p))
}

fn whole(key: &(Category, String), kind: ChangeKind, e: &Entity) -> Change {
    let (severity, note) = severity::of_subject(key.0, kind, e);
    let desc = Some(e.describe()).filter(|d| !d.is_empty());
    let (old, new) = match kind {
        ChangeKind::Removed => (desc, None),
        _ => (None, desc),
    };
    Change {
        category: key.0,
        subject: key.1.clone(),
        field: None,
        change: kind,
        old,
        new,
        severity,
        note,
    }
}

fn fields(key: &(Category, String), o: &Entity, n: &Entity, out: &mut Vec<Change>) {
    let names = o.fields.keys().chain(n.fields.keys());
    let mut names: Vec<&String> = names.collect();
    names.sort();
    names.dedup();
    for name in names {
        let (ov, nv) = (o.fields.get(name), n.fields.get(name));
        if ov == nv {
            continue;
        }
        let kind = match (ov, nv) {
            (None, _) => ChangeKind::Added,
            (_, None) => ChangeKind::Removed,
            _ => ChangeKind::Changed,
        };
        let (severity, note) =
            severity::of_field(key.0, name, ov.map(String::as_str), nv.map(String::as_str));
        out.push(Change {
            category: key.0,
            subject: key.1.clone(),
            field: Some(name.clone()),
            change: kind,
            old: ov.cloned(),
            new: nv.cloned(),
            severity,
            note,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(parent: Option<(Category, &str)>, fields: &[(&str, &str)]) -> Entity {
        Entity {
            parent: parent.map(|(c, s)| (c, s.to_string())),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn children_of_a_removed_subject_are_folded_into_it() {
        let pod = (Category::Pod, "default/web".to_string());
        let mut old = Facts::new();
        old.insert(pod.clone(), entity(None, &[("ips", "10.0.0.1")]));
        old.insert(
            (Category::Link, "pod default/web eth0".into()),
            entity(Some((Category::Pod, "default/web")), &[("mtu", "1500")]),
        );
        old.insert(
            (Category::Link, "node eth0".into()),
            entity(None, &[("mtu", "1500")]),
        );
        let mut new = Facts::new();
        new.insert(
            (Category::Link, "node eth0".into()),
            entity(None, &[("mtu", "9000")]),
        );
        let c = compare(&old, &new);
        let got: Vec<(Category, &str, Option<&str>, ChangeKind)> = c
            .iter()
            .map(|c| (c.category, c.subject.as_str(), c.field.as_deref(), c.change))
            .collect();
        assert_eq!(
            got,
            vec![
                (Category::Pod, "default/web", None, ChangeKind::Removed),
                (
                    Category::Link,
                    "node eth0",
                    Some("mtu"),
                    ChangeKind::Changed
                ),
            ]
        );
        assert_eq!(c[0].old.as_deref(), Some("ips 10.0.0.1"));
        assert_eq!(
            (c[1].old.as_deref(), c[1].new.as_deref()),
            (Some("1500"), Some("9000"))
        );
    }

    #[test]
    fn a_field_on_one_side_only_is_added_or_removed() {
        let k = (Category::Link, "node eth0".to_string());
        let old: Facts = [(k.clone(), entity(None, &[("master", "cni0")]))].into();
        let new: Facts = [(k, entity(None, &[("mtu", "1500")]))].into();
        let c = compare(&old, &new);
        let kinds: Vec<(&str, ChangeKind)> = c
            .iter()
            .map(|c| (c.field.as_deref().unwrap(), c.change))
            .collect();
        assert_eq!(
            kinds,
            vec![("master", ChangeKind::Removed), ("mtu", ChangeKind::Added)]
        );
    }
}
