// A domain's life after its guest, as Xen's domain_shutdown and domain_kill see it: it is shut down once
// (for the reason the guest gave, or for a crash when its console showed a Linux panic first, since a
// panicked kernel's reboot is not what its user asked for), its config says what follows (xl's
// on_poweroff, on_reboot, on_crash, on_watchdog), and once none of its vCPUs is on a CPU and nobody
// holds it, what it held is given back: first its own grant mappings and the other ends of its event
// channels (once), then, when no other domain maps its grants any more, its memory. A preserved
// domain keeps everything and never runs again. The hypervisor does each step; this decides which.

/// What follows a shutdown, with the values the boot tree's `tern,on-*` properties carry.
public enum AfterShutdown: UInt32, Sendable {
    case destroy = 0, restart = 1, preserve = 2
}

/// A domain's config for each reason it may stop.
public struct ShutdownActions: Sendable {
    public var poweroff: AfterShutdown
    public var reboot: AfterShutdown
    public var crash: AfterShutdown
    public var watchdog: AfterShutdown

    public init(poweroff: AfterShutdown, reboot: AfterShutdown, crash: AfterShutdown, watchdog: AfterShutdown) {
        self.poweroff = poweroff
        self.reboot = reboot
        self.crash = crash
        self.watchdog = watchdog
    }

    /// A suspended domain cannot be resumed by Tern (no save/restore), so suspend destroys it.
    public func action(for reason: ShutdownReason) -> AfterShutdown {
        switch reason {
        case .poweroff: poweroff
        case .reboot: reboot
        case .crash: crash
        case .watchdog: watchdog
        case .suspend: .destroy
        }
    }
}

public struct DomainLife: Sendable {
    public struct Shutdown: Equatable, Sendable {
        public var reason: ShutdownReason
        public var after: AfterShutdown
        /// The guest asked for something else, after a panic banner: it counts as a crash.
        public var afterPanic: Bool
        /// The control domain destroyed it (domctl destroydomain), whatever the guest did.
        public var destroyed = false
        /// The guest shut itself down (or crashed) before any destroy: Xen's "shutdown" state, with
        /// its reason. A domain destroyed while it ran has none.
        public var byGuest = true
    }

    /// How it was shut down; nil while it lives.
    public private(set) var shutdown: Shutdown?
    /// Its own grant mappings and its channels' other ends have been let go.
    public private(set) var detached = false
    /// Told once that its memory outlives it, for the mappings others still hold.
    public private(set) var heldForGrants = false
    /// Told once that others hold it (foreign mappings of its pages, or a hypercall working on it).
    public private(set) var heldByOthers = false

    public init() {}

    /// `shutdown != nil`, kept as a flag because the trap paths ask it: one bit test, not an Optional's tag.
    public private(set) var isDying = false
    /// A domain that will be rebuilt counts as alive meanwhile (the machine powers off when none is).
    public var countsAsAlive: Bool { shutdown.map { $0.after == .restart } ?? true }
    /// Its memory goes back some day: it is dead and not preserved.
    public var awaitsRelease: Bool { shutdown.map { $0.after != .preserve } ?? false }

    /// Ends the domain for `asked`; nil (nothing changes) when it is already dying.
    public mutating func shutDown(_ asked: ShutdownReason, hasPanicked: Bool, actions: ShutdownActions) -> Shutdown? {
        guard shutdown == nil else { return nil }
        let afterPanic = asked != .crash && hasPanicked
        let reason = afterPanic ? .crash : asked
        shutdown = Shutdown(reason: reason, after: actions.action(for: reason), afterPanic: afterPanic)
        isDying = true
        return shutdown
    }

    /// The control domain destroys it (`xl destroy`): a live domain dies, and one that was shut down
    /// but preserved or restarting is released instead. False when it is already on its way out.
    public mutating func destroy() -> Bool {
        if let s = shutdown {
            guard s.after != .destroy else { return false }
            shutdown?.after = .destroy
            shutdown?.destroyed = true
            return true
        }
        shutdown = Shutdown(reason: .poweroff, after: .destroy, afterPanic: false, destroyed: true, byGuest: false)
        isDying = true
        return true
    }

    /// What the release pass does with a domain now.
    public enum ReleaseStep: Equatable, Sendable {
        /// Nothing yet: it lives, is preserved, still has a vCPU on a CPU or is held.
        case wait
        /// Its memory stays while other domains map `mapped` of its grants; `announce` the first time.
        case keepForGrants(mapped: Int, announce: Bool)
        /// Give back its memory (once nobody holds it: DomainReferences.release decides the race);
        /// `grantsWereHeld` when it waited for other domains' mappings, which the log says.
        case release(grantsWereHeld: Bool)
    }

    /// Whether the release pass may work on it: dead, not preserved, none of its vCPUs on a CPU, and
    /// nobody holding it.
    public func mayRelease(vcpusOnCPUs: Int, holders: UInt32) -> Bool {
        awaitsRelease && vcpusOnCPUs == 0 && holders == 0
    }

    /// Whether to say that `holders` keep a domain that could otherwise be released: the first time only.
    public mutating func announceHolders(vcpusOnCPUs: Int, holders: UInt32) -> Bool {
        guard awaitsRelease, vcpusOnCPUs == 0, holders > 0, !heldByOthers else { return false }
        heldByOthers = true
        return true
    }

    /// True once, the first time it may be released: let go of its own mappings and channels (they
    /// need nothing of other domains, so this never waits).
    public mutating func detach() -> Bool {
        guard awaitsRelease, !detached else { return false }
        detached = true
        return true
    }

    /// After `detach`, with `mapped` of its grants still mapped by others.
    public mutating func releaseStep(mapped: Int) -> ReleaseStep {
        guard awaitsRelease, detached else { return .wait }
        if mapped > 0 {
            let announce = !heldForGrants
            heldForGrants = true
            return .keepForGrants(mapped: mapped, announce: announce)
        }
        return .release(grantsWereHeld: heldForGrants)
    }
}
