import Testing
@testable import TernCore

/// A domain's shutdown and the release of what it held, step by step as the hypervisor takes them.
@Suite struct DomainLifeTests {
    private let xlDefaults = ShutdownActions(poweroff: .destroy, reboot: .restart, crash: .destroy, watchdog: .destroy)

    @Test func theConfigSaysWhatFollowsEachReason() {
        var life = DomainLife()
        #expect(!life.isDying && life.countsAsAlive && !life.awaitsRelease)
        let rebooted = life.shutDown(.reboot, hasPanicked: false, actions: xlDefaults)
        #expect(rebooted == .init(reason: .reboot, after: .restart, afterPanic: false))
        #expect(life.isDying && life.countsAsAlive && life.awaitsRelease)   // rebuilt: alive meanwhile
        // Once only: a second shutdown (a watchdog firing as it dies, say) changes nothing.
        let again = life.shutDown(.crash, hasPanicked: false, actions: xlDefaults)
        #expect(again == nil)
        #expect(life.shutdown?.reason == .reboot)

        var suspended = DomainLife()
        let suspend = suspended.shutDown(.suspend, hasPanicked: false, actions: xlDefaults)
        #expect(suspend?.after == .destroy)
        #expect(!suspended.countsAsAlive)
    }

    /// Linux's `panic=N` reboots (or powers off) after its banner: that is a crash, and on_crash decides.
    @Test func aShutdownAfterAPanicIsACrash() {
        let actions = ShutdownActions(poweroff: .destroy, reboot: .restart, crash: .preserve, watchdog: .destroy)
        var life = DomainLife()
        let panicked = life.shutDown(.reboot, hasPanicked: true, actions: actions)
        #expect(panicked == .init(reason: .crash, after: .preserve, afterPanic: true))
        var crashed = DomainLife()
        let crash = crashed.shutDown(.crash, hasPanicked: true, actions: actions)
        #expect(crash?.afterPanic == false)
    }

    @Test func aPreservedDomainIsNeverReleased() {
        let actions = ShutdownActions(poweroff: .preserve, reboot: .restart, crash: .destroy, watchdog: .destroy)
        var life = DomainLife()
        _ = life.shutDown(.poweroff, hasPanicked: false, actions: actions)
        #expect(!life.countsAsAlive && !life.awaitsRelease)
        #expect(!life.mayRelease(vcpusOnCPUs: 0, holders: 0))
        let detached = life.detach()
        #expect(!detached)
        let step = life.releaseStep(mapped: 0)
        #expect(step == .wait)
    }

    @Test func releaseWaitsForItsVCPUsAndHolders() {
        var life = DomainLife()
        #expect(!life.mayRelease(vcpusOnCPUs: 0, holders: 0))          // alive
        _ = life.shutDown(.poweroff, hasPanicked: false, actions: xlDefaults)
        #expect(!life.mayRelease(vcpusOnCPUs: 1, holders: 0))          // still on a CPU
        #expect(!life.mayRelease(vcpusOnCPUs: 0, holders: 2))          // another domain works on it
        #expect(life.mayRelease(vcpusOnCPUs: 0, holders: 0))
        let early = life.releaseStep(mapped: 0)
        #expect(early == .wait)                   // not detached yet
        let detached = life.detach()
        #expect(detached)
        let detachedAgain = life.detach()
        #expect(!detachedAgain)                                         // once
        let step = life.releaseStep(mapped: 0)
        #expect(step == .release(grantsWereHeld: false))
    }

    /// A dead domain that others hold (dom0 maps its pages) says so once, and only when nothing else
    /// (a vCPU still on a CPU, or being alive) keeps it anyway.
    @Test func holdersAreAnnouncedOnce() {
        var life = DomainLife()
        var said = life.announceHolders(vcpusOnCPUs: 0, holders: 1)
        #expect(!said)                                                    // alive
        _ = life.shutDown(.poweroff, hasPanicked: false, actions: xlDefaults)
        said = life.announceHolders(vcpusOnCPUs: 1, holders: 1)
        #expect(!said)                                                    // still on a CPU
        said = life.announceHolders(vcpusOnCPUs: 0, holders: 0)
        #expect(!said && !life.heldByOthers)                              // nobody holds it
        said = life.announceHolders(vcpusOnCPUs: 0, holders: 2)
        #expect(said && life.heldByOthers)
        said = life.announceHolders(vcpusOnCPUs: 0, holders: 2)
        #expect(!said)                                                    // once
    }

    /// The granter dies while another domain maps its grants: its memory stays (said once) until the
    /// last mapping goes, and the release then says why it waited.
    @Test func mappedGrantsKeepTheMemory() {
        var life = DomainLife()
        _ = life.shutDown(.crash, hasPanicked: false, actions: xlDefaults)
        let detached = life.detach()
        #expect(detached)
        let held = life.releaseStep(mapped: 3)
        #expect(held == .keepForGrants(mapped: 3, announce: true))
        let stillHeld = life.releaseStep(mapped: 1)
        #expect(stillHeld == .keepForGrants(mapped: 1, announce: false))
        let step = life.releaseStep(mapped: 0)
        #expect(step == .release(grantsWereHeld: true))
    }
}

@Suite struct ControllerPauseTests {
    @Test func pausesNestUpTo255() {
        var p = ControllerPause()
        #expect(!p.isPaused)
        #expect(p.pause() == .success(true))            // it stops here
        #expect(p.pause() == .success(false))
        #expect(p.unpause() == .success(false))
        #expect(p.unpause() == .success(true))          // and runs again here
        #expect(p.unpause() == .failure(.EINVAL))
        for _ in 0 ..< 255 { _ = p.pause() }
        #expect(p.pause() == .failure(.EOVERFLOW) && p.count == 255)
    }
}

@Suite struct DomainDestroyTests {
    private let actions = ShutdownActions(poweroff: .destroy, reboot: .restart, crash: .preserve, watchdog: .destroy)

    @Test func aLiveDomainIsDestroyedOnce() {
        var life = DomainLife()
        let lifeDestroyed = life.destroy()
        #expect(lifeDestroyed)
        #expect(life.isDying && life.awaitsRelease && !life.countsAsAlive)
        #expect(life.shutdown?.destroyed == true && life.shutdown?.byGuest == false)
        let destroyedAgain = life.destroy()
        #expect(!destroyedAgain)                                    // already on its way out
        let again = life.shutDown(.reboot, hasPanicked: false, actions: actions)
        #expect(again == nil)
    }

    /// xl destroy is how a preserved domain is let go, and it stops a restart.
    @Test func aPreservedOrRestartingDomainIsReleasedInstead() {
        var preserved = DomainLife()
        _ = preserved.shutDown(.crash, hasPanicked: false, actions: actions)
        #expect(!preserved.awaitsRelease)
        let preservedDestroyed = preserved.destroy()
        #expect(preservedDestroyed)
        #expect(preserved.awaitsRelease && preserved.shutdown?.reason == .crash && preserved.shutdown?.byGuest == true)
        var restarting = DomainLife()
        _ = restarting.shutDown(.reboot, hasPanicked: false, actions: actions)
        #expect(restarting.countsAsAlive)
        let restartingDestroyed = restarting.destroy()
        #expect(restartingDestroyed)
        #expect(!restarting.countsAsAlive && restarting.awaitsRelease)
        var powered = DomainLife()
        _ = powered.shutDown(.poweroff, hasPanicked: false, actions: actions)
        let poweredDestroyed = powered.destroy()
        #expect(!poweredDestroyed)                                 // released anyway
    }
}
