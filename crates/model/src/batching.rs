//! Batches by token budget over length-sorted proteins. With packed tokens there is no padding,
//! so the budget bounds the activations held at once; sorting keeps batches of similar
//! lengths, which balances the per-(sequence, head) attention tasks.

/// Groups indices of `token_lengths` (tokens incl. `<cls>`/`<eos>`) into batches of at most
/// `token_budget` tokens (a longer protein gets a batch of its own), longest first.
pub fn plan_batches(token_lengths: &[usize], token_budget: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..token_lengths.len()).collect();
    // Stable order for equal lengths, so plans (and output bytes) are reproducible.
    order.sort_by_key(|&i| (std::cmp::Reverse(token_lengths[i]), i));
    let mut batches = Vec::new();
    let mut current = Vec::new();
    let mut tokens = 0;
    for i in order {
        if !current.is_empty() && tokens + token_lengths[i] > token_budget {
            batches.push(std::mem::take(&mut current));
            tokens = 0;
        }
        tokens += token_lengths[i];
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::plan_batches;

    #[test]
    fn budget_respected_and_every_protein_once() {
        let lengths = [300, 10, 1024, 50, 300, 700, 2];
        let batches = plan_batches(&lengths, 1024);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        for b in &batches {
            let total: usize = b.iter().map(|&i| lengths[i]).sum();
            assert!(total <= 1024 || b.len() == 1, "{b:?} has {total} tokens");
        }
        assert_eq!(batches[0], vec![2]);
    }
}
