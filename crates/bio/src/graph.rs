//! Small graph routines over dense node indices, shared by the OBO checker and the GO DAG.
//! Edges go from a node to its parents.

/// A cycle if there is one: nodes in order, each with an edge to the next and the last with an
/// edge to the first. Iterative depth-first search, so deep ontologies cannot overflow the stack.
pub fn find_cycle(parents: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        OnPath,
        Done,
    }
    let mut state = vec![State::New; parents.len()];
    // (node, index of the next parent to visit)
    let mut path: Vec<(usize, usize)> = Vec::new();
    for root in 0..parents.len() {
        if state[root] != State::New {
            continue;
        }
        state[root] = State::OnPath;
        path.push((root, 0));
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            if let Some(&parent) = parents[node].get(*next) {
                *next += 1;
                match state[parent] {
                    State::New => {
                        state[parent] = State::OnPath;
                        path.push((parent, 0));
                    }
                    State::OnPath => {
                        let start = path.iter().position(|&(n, _)| n == parent).unwrap_or(0);
                        return Some(path[start..].iter().map(|&(n, _)| n).collect());
                    }
                    State::Done => {}
                }
            } else {
                state[node] = State::Done;
                path.pop();
            }
        }
    }
    None
}

/// Nodes ordered so that every node comes after all of its parents (roots first), or the
/// cycle that prevents it.
pub fn parents_first_order(parents: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); parents.len()];
    let mut unplaced_parents: Vec<usize> = parents.iter().map(Vec::len).collect();
    for (node, node_parents) in parents.iter().enumerate() {
        for &parent in node_parents {
            children[parent].push(node);
        }
    }
    let mut order: Vec<usize> = (0..parents.len())
        .filter(|&n| unplaced_parents[n] == 0)
        .collect();
    let mut next = 0;
    while next < order.len() {
        let node = order[next];
        next += 1;
        for &child in &children[node] {
            unplaced_parents[child] -= 1;
            if unplaced_parents[child] == 0 {
                order.push(child);
            }
        }
    }
    if order.len() == parents.len() {
        Ok(order)
    } else {
        Err(find_cycle(parents).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cycle_and_orders_dag() {
        // 0 <- 1 <- 2, 3 -> 1
        let dag = vec![vec![], vec![0], vec![1], vec![1, 0]];
        assert_eq!(find_cycle(&dag), None);
        let order = parents_first_order(&dag).unwrap();
        let position = |n| order.iter().position(|&x| x == n).unwrap();
        assert!(
            position(0) < position(1) && position(1) < position(2) && position(1) < position(3)
        );

        let cyclic = vec![vec![2], vec![0], vec![1], vec![]];
        let cycle = find_cycle(&cyclic).unwrap();
        assert_eq!(cycle.len(), 3);
        for (i, &node) in cycle.iter().enumerate() {
            assert!(cyclic[node].contains(&cycle[(i + 1) % cycle.len()]));
        }
        assert!(parents_first_order(&cyclic).is_err());
    }
}
