using CacheGuard.Internal;
using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

/// <summary>L1's clock on the system clock: the wall clock read once a second, advanced in between by a coarse tick.</summary>
public class CoarseSystemClockTests
{
    private static readonly DateTimeOffset Epoch = FakeTimeProvider.Epoch;

    [Test]
    public void BetweenResyncs_TheTickAdvancesTheTime_AndTheWallClockIsNotRead()
    {
        var wall = new FakeTimeProvider();
        long tick = 5_000;
        var clock = new CoarseSystemClock(wall, () => tick);

        tick += 250;
        wall.Advance(TimeSpan.FromHours(1)); // not read until the next resync
        Assert.That(clock.UtcNow, Is.EqualTo(Epoch.AddMilliseconds(250)));

        tick += 749;
        Assert.That(clock.UtcNow, Is.EqualTo(Epoch.AddMilliseconds(999)));
    }

    [Test]
    public void AfterASecondOfTicks_ItReadsTheWallClockAgain_SoAStepIsFollowed()
    {
        var wall = new FakeTimeProvider();
        long tick = 0;
        var clock = new CoarseSystemClock(wall, () => tick);

        wall.Advance(TimeSpan.FromHours(1));
        tick += CoarseSystemClock.ResyncMilliseconds;
        Assert.That(clock.UtcNow, Is.EqualTo(Epoch.AddHours(1)), "resynced");

        tick += 10;
        Assert.That(clock.UtcNow, Is.EqualTo(Epoch.AddHours(1).AddMilliseconds(10)), "advanced from the new reading");
    }

    [Test]
    public void OnTheSystemClock_ItStaysWithinATickOfThePreciseTime()
    {
        var clock = new CoarseSystemClock(TimeProvider.System);
        for (int i = 0; i < 1_000; i++)
        {
            DateTimeOffset before = TimeProvider.System.GetUtcNow();
            DateTimeOffset coarse = clock.UtcNow;
            DateTimeOffset after = TimeProvider.System.GetUtcNow();

            // The OS tick is at most 10 ms on the kernels .NET supports (HZ = 100); a resync in between lands inside the window.
            Assert.That(coarse, Is.InRange(before.AddMilliseconds(-10), after.AddMilliseconds(10)));
        }
    }
}
