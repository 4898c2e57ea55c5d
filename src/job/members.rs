//! A workspace's members built at once, their output as if one after another.
//!
//! [`each_member`] runs one closure per member on up to `jobs` threads (the
//! builder's, so the members and their compression threads share one bound: see
//! [`crate::pipeline::Builder::build_with`]). What a member reports (its finished
//! layers, its notes) goes through a [`MemberOutput`] to this thread, which passes it
//! on in member order: the first member's as it comes, the next one's (held until
//! then) once the first is done, and so on. Stderr therefore reads as a run one member
//! after another, whatever the threads' timing. Progress bars (`layer_started`) are
//! live and shown at once, each titled with its member.
//!
//! A failure stops the members not yet started; those running finish (their layers
//! are whole in the cache: every write there is a temp file renamed into place). The
//! answer is the first failure in member order, which is the one a run one member
//! after another would have met: every member before it was started before it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError, mpsc};

use hoist_layers::{BuiltLayer, Digest, Progress};
use oci_spec::distribution::Reference;

use crate::assemble::Observer;
use crate::oci::image::Image;
use crate::pipeline::Builder;
use crate::registry::layer_source::RegistryLayers;

/// What a member reports, passed on in member order.
enum Event {
    /// A layer finished, with its title.
    Layer(String, BuiltLayer),
    /// A line for the command's notes.
    Note(String),
}

/// A member's report, or its end.
enum Message {
    Event(usize, Event),
    Done(usize),
}

/// One member's side of the command's output: its layers' titles name it (in a
/// workspace), and what it reports reaches the command in member order.
pub struct MemberOutput<'a> {
    index: usize,
    /// `NAME: ` in a workspace, else empty.
    prefix: &'a str,
    inner: &'a dyn Observer,
    sender: mpsc::Sender<Message>,
}

impl MemberOutput<'_> {
    /// Passes `line` on to the command's notes, in member order.
    pub fn note(&self, line: String) {
        // The receiver lives until every member is done.
        let _ = self
            .sender
            .send(Message::Event(self.index, Event::Note(line)));
    }

    /// `line` as the member says it: `NAME: line` in a workspace.
    pub fn named(&self, line: &str) -> String {
        format!("{}{line}", self.prefix)
    }
}

impl Observer for MemberOutput<'_> {
    fn layer_started(&self, label: &str) -> Box<dyn Progress + '_> {
        self.inner.layer_started(&self.named(label))
    }

    fn layer_finished(&self, label: &str, layer: &BuiltLayer) {
        let event = Event::Layer(self.named(label), layer.clone());
        let _ = self.sender.send(Message::Event(self.index, event));
    }
}

/// Where each member's output goes: the observer for layers, `note` for notes.
pub struct Sinks<'a, 'n> {
    /// The command's progress observer.
    pub observer: &'a dyn Observer,
    /// The command's notes.
    pub note: &'n mut dyn FnMut(String),
    /// Whether a layer was archived by this command ([`Builder::built_here`]); `None`
    /// without the layer cache.
    pub built_here: Option<&'a (dyn Fn(&Digest) -> bool + Sync)>,
}

/// Which layers a run one member after another would call cached: one that an earlier
/// member (in member order) has is cached for the later ones; the first member with a
/// layer this command archived calls it built, whichever member's build archived it
/// (two members sharing a layer build it once: [`Builder::build_with`]'s gate). So
/// the progress lines and `--json` say the same whatever the threads' timing.
pub struct CachedInOrder<'a> {
    built_here: Option<&'a (dyn Fn(&Digest) -> bool + Sync)>,
    earlier: BTreeSet<Digest>,
    current: BTreeSet<Digest>,
}

impl<'a> CachedInOrder<'a> {
    /// For the builds of a builder whose [`Builder::built_here`] is `built_here`
    /// (`None`: no layer cache, every flag stays as it is).
    pub fn new(built_here: Option<&'a (dyn Fn(&Digest) -> bool + Sync)>) -> Self {
        CachedInOrder {
            built_here,
            earlier: BTreeSet::new(),
            current: BTreeSet::new(),
        }
    }

    /// Whether the current member's new layer `digest` (reported `cached`) counts as
    /// cached.
    fn cached(&mut self, digest: &Digest, cached: bool) -> bool {
        let Some(built_here) = self.built_here else {
            return cached;
        };
        self.current.insert(digest.clone());
        self.earlier.contains(digest) || cached && !built_here(digest)
    }

    /// The current member is done: its layers are the next ones' earlier ones.
    fn next_member(&mut self) {
        self.earlier.append(&mut self.current);
    }

    /// The next member's image, its layer reports' `cached` set as in member order.
    pub fn image(&mut self, image: &mut Image) {
        for platform in &mut image.platforms {
            // The base's layers and those a registry holds are never cached.
            for layer in platform
                .layers
                .iter_mut()
                .filter(|l| !l.reused && l.origin != "base")
            {
                layer.cached = self.cached(&layer.digest, layer.cached);
            }
        }
        self.next_member();
    }

    fn layer(&mut self, layer: &mut BuiltLayer) {
        if !layer.known {
            layer.from_cache = self.cached(&layer.digest, layer.from_cache);
        }
    }
}

/// Runs `work` for each of `names`' members (`named`: prefix their layers' titles with
/// the name) on up to `jobs` threads; one answer per member, in order, `None` for those
/// not started after a failure.
pub fn each_member<T: Send, E: Send>(
    (names, named): (&[String], bool),
    jobs: usize,
    Sinks {
        observer,
        note,
        built_here,
    }: Sinks<'_, '_>,
    work: &(dyn Fn(usize, &MemberOutput) -> Result<T, E> + Sync),
) -> Vec<Option<Result<T, E>>> {
    let count = names.len();
    let prefixes: Vec<String> = names
        .iter()
        .map(|name| {
            if named {
                format!("{name}: ")
            } else {
                String::new()
            }
        })
        .collect();
    let results: Mutex<Vec<Option<Result<T, E>>>> = Mutex::new((0..count).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, count.max(1)) {
            let sender = sender.clone();
            let (results, next, stop, prefixes) = (&results, &next, &stop, &prefixes);
            scope.spawn(move || {
                loop {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    if index >= count {
                        break;
                    }
                    let output = MemberOutput {
                        index,
                        prefix: &prefixes[index],
                        inner: observer,
                        sender: sender.clone(),
                    };
                    let result = work(index, &output);
                    if result.is_err() {
                        stop.store(true, Ordering::SeqCst);
                    }
                    results.lock().unwrap_or_else(PoisonError::into_inner)[index] = Some(result);
                    let _ = sender.send(Message::Done(index));
                }
            });
        }
        drop(sender);
        let failed = |index: usize| {
            results.lock().unwrap_or_else(PoisonError::into_inner)[index]
                .as_ref()
                .is_some_and(Result::is_err)
        };
        let mut order = InOrder::new(count, observer, note);
        order.cached = CachedInOrder::new(built_here);
        for message in receiver {
            order.take(message, &failed);
        }
    });
    results.into_inner().unwrap_or_else(PoisonError::into_inner)
}

/// Each member's registry layers ([`Builder::read_registry_layers`]), or why they
/// could not be read.
pub type Known = crate::Result<Option<RegistryLayers>>;

/// [`each_member`] on `builder`'s jobs and observer, each member handed the layers its
/// registry images hold (`lists`, read all at once on a thread of their own while the
/// members build: each waits for its own only): every member's answer in order, or
/// the first failure in member order. `image` finds each answer's image, whose
/// layers' `cached` flags are then set as in member order ([`CachedInOrder`]).
pub fn build_members<T: Send>(
    builder: &Builder,
    (names, named, lists): (&[String], bool, &[Vec<Reference>]),
    note: &mut dyn FnMut(String),
    image: fn(&mut T) -> &mut Image,
    work: &(dyn Fn(usize, Known, &MemberOutput) -> super::Result<T> + Sync),
) -> super::Result<Vec<T>> {
    let read = Slots::new(names.len());
    let answers = std::thread::scope(|scope| {
        scope.spawn(|| {
            read.fill_by(
                |ready| builder.read_registry_layers(lists, ready),
                || reader_gone("the registry's layers"),
            );
        });
        built_in_order(builder, (names, named), note, &|i, out| {
            work(i, read.take(i), out)
        })
    });
    let mut answers = answers?;
    let built_here = |digest: &Digest| builder.built_here(digest);
    let mut cached = CachedInOrder::new(builder.uses_cache().then_some(&built_here));
    for answer in &mut answers {
        cached.image(image(answer));
    }
    Ok(answers)
}

/// [`each_member`]'s answers, or the first failure in member order.
fn built_in_order<T: Send>(
    builder: &Builder,
    (names, named): (&[String], bool),
    note: &mut dyn FnMut(String),
    work: &(dyn Fn(usize, &MemberOutput) -> super::Result<T> + Sync),
) -> super::Result<Vec<T>> {
    let built_here = |digest: &Digest| builder.built_here(digest);
    let built_here: Option<&(dyn Fn(&Digest) -> bool + Sync)> =
        builder.uses_cache().then_some(&built_here);
    let sinks = Sinks {
        observer: builder.observer(),
        note,
        built_here,
    };
    let mut answers = Vec::with_capacity(names.len());
    for answer in each_member((names, named), builder.jobs(), sinks, work) {
        match answer {
            Some(Ok(value)) => answers.push(value),
            Some(Err(error)) => return Err(error),
            // Not started: an earlier member failed, and its failure came first.
            None => break,
        }
    }
    Ok(answers)
}

/// One value per member, filled by one thread, waited for by another.
pub(super) struct Slots<T> {
    values: Mutex<Vec<Slot<T>>>,
    filled: Condvar,
}

/// One member's place in [`Slots`].
enum Slot<T> {
    Waiting,
    Ready(T),
    Taken,
}

impl<T> Slots<T> {
    pub(super) fn new(count: usize) -> Slots<T> {
        Slots {
            values: Mutex::new((0..count).map(|_| Slot::Waiting).collect()),
            filled: Condvar::new(),
        }
    }

    fn fill(&self, index: usize, value: T) {
        self.values.lock().unwrap_or_else(PoisonError::into_inner)[index] = Slot::Ready(value);
        self.filled.notify_all();
    }

    /// Fills the slots with what `read` hands over; those it leaves empty (it
    /// panicked, or skipped one) get `abandoned()`, so that no member waits forever
    /// in [`Self::take`] for a reader that is gone. A panic then goes on.
    pub(super) fn fill_by(
        &self,
        read: impl FnOnce(&(dyn Fn(usize, T) + Sync)),
        abandoned: impl Fn() -> T,
    ) where
        T: Send,
    {
        /// Fills what is still waiting when dropped, unwinding included.
        struct Rest<'s, T, F: Fn() -> T>(&'s Slots<T>, F);
        impl<T, F: Fn() -> T> Drop for Rest<'_, T, F> {
            fn drop(&mut self) {
                let mut values = self.0.values.lock().unwrap_or_else(PoisonError::into_inner);
                for slot in values.iter_mut().filter(|s| matches!(s, Slot::Waiting)) {
                    *slot = Slot::Ready((self.1)());
                }
                self.0.filled.notify_all();
            }
        }
        let _rest = Rest(self, abandoned);
        read(&|i, value| self.fill(i, value));
    }

    /// Waits for member `index`'s value (every slot is filled once: [`Self::fill_by`]
    /// hands each its answer, errors included).
    pub(super) fn take(&self, index: usize) -> T {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match std::mem::replace(&mut values[index], Slot::Taken) {
                Slot::Ready(value) => return value,
                waiting => values[index] = waiting,
            }
            values = self
                .filled
                .wait(values)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// What a member waiting on [`Slots`] gets when the thread reading for it is gone.
pub(super) fn reader_gone<T>(what: &str) -> crate::Result<T> {
    Err(crate::Error::Registry {
        registry: String::new(),
        message: format!(
            "reading {what} stopped before this member's answer (a bug: see the panic above)"
        ),
    })
}

/// The members' reports passed on in member order.
struct InOrder<'a, 'n> {
    /// The member whose reports pass straight through.
    head: usize,
    /// Reports of later members, held.
    held: Vec<Vec<Event>>,
    done: Vec<bool>,
    /// A member failed: later members' reports are dropped, as a run one member after
    /// another would never have made them.
    halted: bool,
    observer: &'a dyn Observer,
    note: &'n mut dyn FnMut(String),
    cached: CachedInOrder<'a>,
}

impl<'a, 'n> InOrder<'a, 'n> {
    fn new(count: usize, observer: &'a dyn Observer, note: &'n mut dyn FnMut(String)) -> Self {
        InOrder {
            head: 0,
            held: (0..count).map(|_| Vec::new()).collect(),
            done: vec![false; count],
            halted: false,
            observer,
            note,
            cached: CachedInOrder::new(None),
        }
    }

    fn take(&mut self, message: Message, failed: &dyn Fn(usize) -> bool) {
        match message {
            Message::Event(index, event) if index == self.head => self.pass(event),
            Message::Event(index, event) => self.held[index].push(event),
            Message::Done(index) => {
                self.done[index] = true;
                // A member's reports all come before its end: the head's are passed.
                while self.head < self.done.len() && self.done[self.head] {
                    self.halted |= failed(self.head);
                    self.head += 1;
                    self.cached.next_member();
                    if let Some(held) = self.held.get_mut(self.head) {
                        for event in std::mem::take(held) {
                            self.pass(event);
                        }
                    }
                }
            }
        }
    }

    fn pass(&mut self, event: Event) {
        if self.halted {
            return;
        }
        match event {
            Event::Layer(label, mut layer) => {
                self.cached.layer(&mut layer);
                self.observer.layer_finished(&label, &layer);
            }
            Event::Note(line) => (self.note)(line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what reaches the command, in order.
    #[derive(Default)]
    struct Record(Mutex<Vec<String>>);

    impl Observer for Record {
        fn layer_started(&self, _label: &str) -> Box<dyn Progress + '_> {
            Box::new(hoist_layers::NoProgress)
        }
        fn layer_finished(&self, label: &str, _layer: &BuiltLayer) {
            self.0.lock().unwrap().push(label.to_string());
        }
    }

    fn layer() -> BuiltLayer {
        BuiltLayer {
            digest: hoist_layers::Digest::sha256_of(b""),
            diff_id: hoist_layers::Digest::sha256_of(b""),
            size: 0,
            media_type: String::new(),
            from_cache: false,
            key: hoist_layers::Digest::sha256_of(b"key"),
            known: false,
        }
    }

    /// Members finishing in reverse order (the last first) still report in member
    /// order, layers and notes interleaved as each member made them, titled with the
    /// member's name.
    #[test]
    fn reports_come_in_member_order_whatever_the_timing() {
        let names: Vec<String> = (0..4).map(|i| format!("m{i}")).collect();
        let record = Record::default();
        let mut notes = Vec::new();
        let answers = each_member(
            (&names, true),
            4,
            Sinks {
                observer: &record,
                note: &mut |n| notes.push(n),
                built_here: None,
            },
            &|i, out| {
                std::thread::sleep(std::time::Duration::from_millis(40 * (3 - i as u64)));
                out.layer_finished("layer 1", &layer());
                out.note(out.named("note"));
                out.layer_finished("layer 2", &layer());
                Ok::<_, String>(i * 10)
            },
        );
        let answers: Vec<usize> = answers.into_iter().map(|a| a.unwrap().unwrap()).collect();
        assert_eq!(answers, [0, 10, 20, 30]);
        let layers = record.0.into_inner().unwrap();
        let expected: Vec<String> = names
            .iter()
            .flat_map(|n| [format!("{n}: layer 1"), format!("{n}: layer 2")])
            .collect();
        assert_eq!(layers, expected);
        let expected: Vec<String> = names.iter().map(|n| format!("{n}: note")).collect();
        assert_eq!(notes, expected);
    }

    /// A failure stops the members not yet started; the members before it report,
    /// those after it do not; outside a workspace titles are left as they are.
    #[test]
    fn a_failure_stops_what_has_not_started() {
        let names: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
        let record = Record::default();
        let answers = each_member(
            (&names, false),
            1,
            Sinks {
                observer: &record,
                note: &mut |_| {},
                built_here: None,
            },
            &|i, out| {
                out.layer_finished(&format!("layer of {i}"), &layer());
                if i == 2 {
                    Err(format!("m{i} broke"))
                } else {
                    Ok(i)
                }
            },
        );
        assert!(matches!(answers[1], Some(Ok(1))));
        assert_eq!(
            answers[2].as_ref().unwrap().as_ref().unwrap_err(),
            "m2 broke"
        );
        assert!(answers[3..].iter().all(Option::is_none), "{answers:?}");
        assert_eq!(
            record.0.into_inner().unwrap(),
            ["layer of 0", "layer of 1", "layer of 2"]
        );
    }

    /// A reader that dies halfway leaves no member waiting: the slots it did not fill
    /// answer an error naming what was read, and its panic still reaches the caller.
    #[test]
    fn a_reader_that_panics_leaves_no_member_waiting() {
        let slots: Slots<crate::Result<u32>> = Slots::new(3);
        let taken = std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                slots.fill_by(
                    |ready| {
                        ready(1, Ok(7));
                        panic!("reader failed");
                    },
                    || reader_gone("the test's values"),
                );
            });
            let taken: Vec<_> = (0..3).map(|i| slots.take(i)).collect();
            assert!(reader.join().is_err(), "the panic goes on");
            taken
        });
        assert_eq!(*taken[1].as_ref().unwrap(), 7);
        for i in [0, 2] {
            let error = taken[i].as_ref().unwrap_err().to_string();
            assert!(error.contains("the test's values"), "{error}");
        }
    }
}
