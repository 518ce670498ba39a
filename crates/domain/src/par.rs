//! Work over many independent items on every core: the large imports' per-row checks and
//! keys. Pure computation on scoped threads; the answer is the one a single pass gives.

/// Items from which `map` splits the work across cores (below, threads cost more than
/// they save).
pub const PARALLEL_FROM: usize = 20_000;

/// `items` split into as many contiguous parts as there are cores (one part when there are
/// fewer than `PARALLEL_FROM`), each given to `f` with the index of its first item; the
/// parts' answers in order.
pub fn parts<T: Sync, U: Send>(items: &[T], f: impl Fn(usize, &[T]) -> U + Sync) -> Vec<U> {
    let threads =
        if items.len() >= PARALLEL_FROM { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { 1 };
    if threads == 1 {
        return vec![f(0, items)];
    }
    let per = items.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            items.chunks(per).enumerate().map(|(k, part)| s.spawn(move || f(k * per, part))).collect();
        handles.into_iter().map(|h| h.join().expect("a part of the work panicked")).collect()
    })
}

/// `f` of every item, each on its own thread (items that are already one core's share).
pub fn each<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    if items.len() < 2 {
        return items.iter().map(&f).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items.iter().map(|item| s.spawn(move || f(item))).collect();
        handles.into_iter().map(|h| h.join().expect("a part of the work panicked")).collect()
    })
}

/// `f` of every item, in order, on every core for many items.
pub fn map<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    let parts = parts(items, |_, part| part.iter().map(&f).collect::<Vec<U>>());
    let mut out = Vec::with_capacity(items.len());
    for p in parts {
        out.extend(p);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn map_keeps_the_order_of_a_single_pass() {
        let items: Vec<u64> = (0..50_000).collect();
        let squares = super::map(&items, |x| x * x);
        assert_eq!(squares, items.iter().map(|x| x * x).collect::<Vec<_>>());
        let firsts = super::parts(&items, |first, part| (first, part.len()));
        assert_eq!(firsts.iter().map(|(_, n)| n).sum::<usize>(), items.len());
        assert!(firsts.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0));
        assert_eq!(super::map(&items[..3], |x| x + 1), vec![1, 2, 3]);
        assert_eq!(super::each(&items[..3], |x| x + 1), vec![1, 2, 3]);
    }
}
