//! The dependency graph: start order (dependencies first, ties alphabetical) and cycle
//! detection. Both are iterative, so no manifest can exhaust the stack.

use std::collections::{BTreeMap, BTreeSet};

use super::Manifest;

/// Service name → the names it depends on (only names that exist as services).
pub(super) type Graph = BTreeMap<String, BTreeSet<String>>;

impl Manifest {
    /// `wanted` (all services when empty) plus everything they depend on, dependencies first.
    /// Unknown names are an error listing the known ones.
    pub fn start_order(&self, wanted: &[String]) -> Result<Vec<String>, String> {
        let unknown: Vec<&String> = wanted
            .iter()
            .filter(|name| !self.services.contains_key(*name))
            .collect();
        if let Some(name) = unknown.first() {
            let known: Vec<&str> = self.services.keys().map(String::as_str).collect();
            return Err(format!(
                "unknown service `{name}`; known services: {}",
                known.join(", ")
            ));
        }
        let graph = self.graph();
        let mut selected: BTreeSet<&String> = BTreeSet::new();
        let mut stack: Vec<&String> = if wanted.is_empty() {
            graph.keys().collect()
        } else {
            wanted.iter().collect()
        };
        while let Some(name) = stack.pop() {
            if selected.insert(name) {
                stack.extend(graph.get(name).into_iter().flatten());
            }
        }
        let sub: Graph = selected
            .iter()
            .map(|name| {
                (
                    (*name).clone(),
                    graph.get(*name).cloned().unwrap_or_default(),
                )
            })
            .collect();
        let (mut order, left) = topological(&sub);
        // Only a hand-built manifest can have a cycle here; start the rest alphabetically.
        order.extend(left);
        Ok(order)
    }

    /// The dependency graph, ignoring names that are not services.
    pub(super) fn graph(&self) -> Graph {
        self.services
            .iter()
            .map(|(name, service)| {
                let deps = service
                    .depends_on
                    .iter()
                    .filter(|dep| self.services.contains_key(*dep))
                    .cloned()
                    .collect();
                (name.clone(), deps)
            })
            .collect()
    }
}

/// Kahn's algorithm with an ordered ready set: dependencies first, ties alphabetical.
/// Returns the order and the nodes left over because they sit on or behind a cycle.
fn topological(graph: &Graph) -> (Vec<String>, BTreeSet<String>) {
    let mut waiting: BTreeMap<&String, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for (name, deps) in graph {
        let deps: Vec<&String> = deps.iter().filter(|d| graph.contains_key(*d)).collect();
        waiting.insert(name, deps.len());
        for dep in deps {
            dependents.entry(dep).or_default().push(name);
        }
    }
    let mut ready: BTreeSet<&String> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(name, _)| *name)
        .collect();
    let mut order = Vec::with_capacity(graph.len());
    while let Some(name) = ready.pop_first() {
        order.push(name.clone());
        for dependent in dependents.get(name).into_iter().flatten() {
            if let Some(count) = waiting.get_mut(dependent) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    ready.insert(dependent);
                }
            }
        }
    }
    let placed: BTreeSet<&String> = order.iter().collect();
    let left = graph
        .keys()
        .filter(|name| !placed.contains(name))
        .cloned()
        .collect();
    (order, left)
}

/// Every dependency cycle, each listed from its alphabetically first member, e.g.
/// `["a", "b", "c"]` for a → b → c → a. A self-dependency is a cycle of one.
pub(super) fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let (_, left) = topological(graph);
    // Every node left over depends on another left-over node, so walking from any of them
    // along left-over dependencies must come back to a node already on the path.
    let mut seen: BTreeSet<&String> = BTreeSet::new();
    let mut found = Vec::new();
    for start in &left {
        let mut path: Vec<&String> = Vec::new();
        let mut current = start;
        loop {
            if let Some(at) = path.iter().position(|n| *n == current) {
                let mut cycle: Vec<String> = path[at..].iter().map(|n| (*n).clone()).collect();
                let first = (0..cycle.len()).min_by_key(|i| &cycle[*i]).unwrap_or(0);
                cycle.rotate_left(first);
                found.push(cycle);
                break;
            }
            if !seen.insert(current) {
                break; // reached a walk already explored
            }
            path.push(current);
            let next = graph
                .get(current)
                .and_then(|deps| deps.iter().find(|d| left.contains(*d)));
            match next {
                Some(next) => current = next,
                None => break,
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    type Edges<'a> = &'a [(&'a str, &'a [&'a str])];

    fn graph(edges: Edges) -> Graph {
        edges
            .iter()
            .map(|(name, deps)| {
                (
                    name.to_string(),
                    deps.iter().map(|d| d.to_string()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn orders_dependencies_first_then_alphabetically() {
        let g = graph(&[
            ("order", &["menu", "inventory"]),
            ("menu", &[]),
            ("inventory", &[]),
            ("z", &[]),
        ]);
        assert_eq!(topological(&g).0, ["inventory", "menu", "order", "z"]);
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &[])]);
        assert_eq!(topological(&g).0, ["c", "b", "a"]);
    }

    #[test]
    fn finds_every_cycle_once() {
        let cases: &[(Edges, &[&[&str]])] = &[
            (&[("a", &["b"]), ("b", &[])], &[]),
            (&[("a", &["a"])], &[&["a"]]),
            (
                &[("a", &["b"]), ("b", &["c"]), ("c", &["a"])],
                &[&["a", "b", "c"]],
            ),
            (
                &[("c", &["a"]), ("a", &["b"]), ("b", &["c"]), ("d", &["c"])],
                &[&["a", "b", "c"]],
            ),
            (
                &[
                    ("a", &["b"]),
                    ("b", &["a"]),
                    ("x", &["y"]),
                    ("y", &["x"]),
                    ("z", &["a", "x"]),
                ],
                &[&["a", "b"], &["x", "y"]],
            ),
        ];
        for (edges, expected) in cases {
            let found = cycles(&graph(edges));
            let expected: Vec<Vec<String>> = expected
                .iter()
                .map(|c| c.iter().map(|s| s.to_string()).collect())
                .collect();
            assert_eq!(found, expected, "{edges:?}");
        }
    }
}
