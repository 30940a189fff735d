//! The global allocator: a small call arena in front of dlmalloc.
//!
//! A plugin call makes a few dozen small blocks (the canonical ABI's argument strings and lists,
//! the plugin's own buffers, its results) and frees all of them by the time the host is done with
//! the call (the results in the export's post-return). Those blocks come from a fixed arena by
//! bumping an offset, and the arena starts over once every block in it is freed: allocating is an
//! add and a compare, freeing a decrement. What does not fit (a large payload) comes from dlmalloc,
//! as does everything while the arena is full. A block that stays allocated across calls only
//! keeps the arena from starting over: the arena never grows, so nothing leaks beyond it.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

/// The arena's size: well above what a fingerprint call or a small transport call allocates.
const ARENA_BYTES: usize = 32 << 10;

#[repr(C, align(16))]
struct Bytes([u8; ARENA_BYTES]);

struct State {
    /// Offset of the first free byte.
    next: usize,
    /// Blocks of the arena not yet freed.
    live: usize,
}

/// The arena and dlmalloc behind it.
pub(crate) struct CallArena {
    bytes: UnsafeCell<Bytes>,
    state: UnsafeCell<State>,
}

// SAFETY: a plugin runs on one thread (`wasm32` without the threads proposal); nothing is shared.
unsafe impl Sync for CallArena {}

impl CallArena {
    pub(crate) const fn new() -> CallArena {
        CallArena {
            bytes: UnsafeCell::new(Bytes([0; ARENA_BYTES])),
            state: UnsafeCell::new(State { next: 0, live: 0 }),
        }
    }

    fn base(&self) -> usize {
        self.bytes.get() as usize
    }

    fn holds(&self, ptr: *mut u8) -> bool {
        (ptr as usize).wrapping_sub(self.base()) < ARENA_BYTES
    }

    /// A block from the arena, or null if it does not fit.
    ///
    /// # Safety
    ///
    /// No other reference to the state is alive (single-threaded, not reentrant).
    unsafe fn bump(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see above.
        let state = unsafe { &mut *self.state.get() };
        let base = self.base();
        let start = (base + state.next + layout.align() - 1) & !(layout.align() - 1);
        match start.checked_add(layout.size()) {
            Some(end) if end <= base + ARENA_BYTES => {
                state.next = end - base;
                state.live += 1;
                start as *mut u8
            }
            _ => core::ptr::null_mut(),
        }
    }
}

unsafe impl GlobalAlloc for CallArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded; `layout` is the caller's.
        unsafe {
            let ptr = self.bump(layout);
            if ptr.is_null() {
                dlmalloc::GlobalDlmalloc.alloc(layout)
            } else {
                ptr
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.holds(ptr) {
            // SAFETY: a block outside the arena came from dlmalloc with this layout.
            return unsafe { dlmalloc::GlobalDlmalloc.dealloc(ptr, layout) };
        }
        // SAFETY: single-threaded.
        let state = unsafe { &mut *self.state.get() };
        state.live -= 1;
        let offset = ptr as usize - self.base();
        if state.live == 0 {
            state.next = 0;
        } else if offset + layout.size() == state.next {
            // The last block: its bytes are free again at once.
            state.next = offset;
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.holds(ptr) {
            // SAFETY: a block outside the arena came from dlmalloc with this layout.
            return unsafe { dlmalloc::GlobalDlmalloc.realloc(ptr, layout, new_size) };
        }
        // SAFETY: single-threaded.
        let state = unsafe { &mut *self.state.get() };
        let offset = ptr as usize - self.base();
        if offset + layout.size() == state.next && offset + new_size <= ARENA_BYTES {
            // The last block grows or shrinks in place.
            state.next = offset + new_size;
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `new_size` is non-zero and, rounded up to the alignment, fits (the caller's
        // contract); the old block holds `layout.size()` bytes and is freed once copied.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new_ptr = self.alloc(new_layout);
            if !new_ptr.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size());
                self.dealloc(ptr, layout);
            }
            new_ptr
        }
    }
}
