using CacheGuard.Internal;
using CsCheck;
using CacheGuard.Testing;

namespace CacheGuard.Tests;

/// <summary>
/// The L2 reads' one shared deadline timer (<see cref="ReadDeadlines"/>): each read ends exactly once, with its own call's
/// outcome when the call beat the deadline and timed out when the deadline came first, however reads, completions and
/// clock advances interleave and however often the pooled watches are reused.
/// </summary>
public class ReadDeadlinesTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMilliseconds(500);

    /// <summary>One step of a generated program: start a read, complete one, or move the clock.</summary>
    private readonly record struct Step(int Kind, int Pick, int Millis)
    {
        public override string ToString() => Kind switch
        {
            0 => "start",
            1 => $"complete #{Pick} with a value",
            2 => $"fail #{Pick}",
            3 => "start with a call already answered",
            _ => $"advance {Millis} ms",
        };
    }

    private static readonly Gen<Step[]> Programs =
        Gen.Select(Gen.Int[0, 5], Gen.Int[0, 63], Gen.Int[0, 700], (kind, pick, millis) => new Step(kind, pick, millis)).Array[1, 80];

    [Test]
    public void EveryRead_EndsWithItsOwnCallsOutcome_IfTheCallBeatTheDeadline_AndTimesOutOtherwise()
    {
        Programs.Sample(
            steps =>
            {
                var time = new FakeTimeProvider();
                var late = new List<Exception>();
                using var deadlines = new ReadDeadlines(time, Timeout, ex => { lock (late) { late.Add(ex); } });
                var reads = new List<Read>();
                foreach (Step step in steps)
                {
                    switch (step.Kind)
                    {
                        case 0 or 3:
                            var call = new TaskCompletionSource<byte[]?>();
                            var read = new Read(reads.Count, call, time.GetUtcNow());
                            if (step.Kind == 3)
                            {
                                read.Answer(time.GetUtcNow(), fail: false);
                            }

                            read.Outcome = deadlines.WatchAsync(call.Task).AsTask();
                            reads.Add(read);
                            break;
                        case 1 or 2 when reads.Count > 0:
                            reads[step.Pick % reads.Count].Answer(time.GetUtcNow(), fail: step.Kind == 2);
                            break;
                        case 4 or 5:
                            time.Advance(TimeSpan.FromMilliseconds(step.Millis));
                            break;
                    }
                }

                time.Advance(Timeout); // every deadline passes
                foreach (Read read in reads)
                {
                    read.Answer(time.GetUtcNow(), fail: read.Id % 2 == 0); // late: the even ones fail, to be reported as abandoned
                }

                Assert.That(Task.WhenAll(reads.Select(r => r.Outcome!.ContinueWith(_ => { }, TaskScheduler.Default))).Wait(TimeSpan.FromSeconds(30)), "every read ended");
                int lateFailures = 0;
                foreach (Read read in reads)
                {
                    bool beatTheDeadline = read.AnsweredAt < read.StartedAt + Timeout;
                    if (!beatTheDeadline)
                    {
                        Assert.That(read.Outcome!.Result.IsTimedOut, Is.True, $"read #{read.Id}: answered at +{(read.AnsweredAt - read.StartedAt).TotalMilliseconds} ms, after its deadline");
                        lateFailures += read.Failed ? 1 : 0;
                    }
                    else if (read.Failed)
                    {
                        Assert.That(read.Outcome!.Exception?.InnerException?.Message, Is.EqualTo(read.Message), $"read #{read.Id} ends with its own call's exception");
                    }
                    else
                    {
                        Assert.That(read.Outcome!.Result.IsTimedOut, Is.False, $"read #{read.Id}: answered at +{(read.AnsweredAt - read.StartedAt).TotalMilliseconds} ms, before its deadline");
                        Assert.That(read.Outcome.Result.Bytes, Is.SameAs(read.Bytes), $"read #{read.Id} gets its own call's bytes");
                    }
                }

                Assert.That(deadlines.Pending, Is.Zero, "no read is still watched");
                lock (late)
                {
                    Assert.That(late, Has.Count.EqualTo(lateFailures), "each call that failed after its read timed out is reported once");
                }
            },
            iter: 2_000,
            print: steps => string.Join(", ", steps));
    }

    [Test]
    public void ReadsAnsweredFromManyThreads_WhileTheClockMoves_EachEndOnce_WithTheirOwnBytes_OrTimedOutOnlyPastTheirDeadline()
    {
        Gen.Select(Gen.Int[1, 64], Gen.Int[0, 3]).Sample(
            input =>
            {
                (int count, int advances) = input;
                var time = new FakeTimeProvider();
                using var deadlines = new ReadDeadlines(time, Timeout, _ => { });
                var calls = new TaskCompletionSource<byte[]?>[count];
                var bytes = new byte[count][];
                var outcomes = new Task<ReadAnswer>[count];
                for (int round = 0; round < 3; round++) // the pooled watches serve reads of several rounds
                {
                    DateTimeOffset started = time.GetUtcNow();
                    for (int i = 0; i < count; i++)
                    {
                        calls[i] = new TaskCompletionSource<byte[]?>();
                        bytes[i] = [(byte)i, (byte)round];
                        outcomes[i] = deadlines.WatchAsync(calls[i].Task).AsTask();
                    }

                    Task clock = Task.Run(() =>
                    {
                        for (int a = 0; a < advances; a++)
                        {
                            time.Advance(Timeout / 2);
                        }
                    });
                    Parallel.For(0, count, i => calls[i].SetResult(bytes[i]));
                    clock.Wait();
                    time.Advance(Timeout); // whatever is left times out
                    Assert.That(Task.WhenAll(outcomes).Wait(TimeSpan.FromSeconds(30)), "every read ended");
                    bool deadlinePassed = time.GetUtcNow() - started >= Timeout;
                    for (int i = 0; i < count; i++)
                    {
                        ReadAnswer answer = outcomes[i].Result;
                        if (answer.IsTimedOut)
                        {
                            Assert.That(deadlinePassed, "a read timed out only once its deadline had passed");
                        }
                        else
                        {
                            Assert.That(answer.Bytes, Is.SameAs(bytes[i]), "a read never gets another read's bytes");
                        }
                    }

                    Assert.That(deadlines.Pending, Is.Zero);
                }
            },
            iter: 300,
            threads: 1);
    }

    [Test]
    public void ACallThatNeverAnswers_TimesOutAtItsDeadline_AndNotBefore()
    {
        var time = new FakeTimeProvider();
        using var deadlines = new ReadDeadlines(time, Timeout, _ => { });
        var never = new TaskCompletionSource<byte[]?>();
        Task<ReadAnswer> read = deadlines.WatchAsync(never.Task).AsTask();
        time.Advance(Timeout - TimeSpan.FromTicks(1));
        Assert.That(read.IsCompleted, Is.False, "one tick before the deadline");
        time.Advance(TimeSpan.FromTicks(1));
        Assert.That(read.IsCompletedSuccessfully && read.Result.IsTimedOut, "at the deadline");
        Assert.That(deadlines.Pending, Is.Zero);
    }

    private sealed class Read(int id, TaskCompletionSource<byte[]?> call, DateTimeOffset startedAt)
    {
        public int Id { get; } = id;

        public DateTimeOffset StartedAt { get; } = startedAt;

        public DateTimeOffset AnsweredAt { get; private set; } = DateTimeOffset.MaxValue;

        public byte[] Bytes { get; } = [(byte)id];

        public string Message => $"read #{Id} failed";

        public bool Failed { get; private set; }

        public Task<ReadAnswer>? Outcome { get; set; }

        public void Answer(DateTimeOffset now, bool fail)
        {
            if (call.Task.IsCompleted)
            {
                return;
            }

            AnsweredAt = now;
            Failed = fail;
            if (fail)
            {
                call.SetException(new InvalidOperationException(Message));
            }
            else
            {
                call.SetResult(Bytes);
            }
        }
    }
}
