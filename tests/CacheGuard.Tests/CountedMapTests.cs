using CacheGuard.Internal;
using CsCheck;

namespace CacheGuard.Tests;

/// <summary>
/// <see cref="CountedMap{TValue}"/>: a map whose "may it hold anything?" costs one read. It must hold what a dictionary
/// holds after every operation, and its count must never fall below the number of entries, or a hot path would skip a
/// queued write or a tag it should have seen.
/// </summary>
public class CountedMapTests
{
    /// <summary>One step of a generated program over a few keys.</summary>
    private readonly record struct Step(int Kind, int Key, int Value)
    {
        public override string ToString() => Kind switch
        {
            0 => $"set k{Key}={Value}",
            1 => $"get-or-add k{Key}={Value}",
            2 => $"remove k{Key}",
            3 => $"remove k{Key} if ={Value}",
            _ => $"update k{Key} to {Value} if ={Value - 1}",
        };
    }

    private static readonly Gen<Step[]> Programs =
        Gen.Select(Gen.Int[0, 4], Gen.Int[0, 5], Gen.Int[0, 3], (kind, key, value) => new Step(kind, key, value)).Array[1, 60];

    [Test]
    public void AfterEveryOperation_ItHoldsWhatADictionaryHolds_AndCountsItExactly()
    {
        Programs.Sample(
            steps =>
            {
                var map = new CountedMap<int>();
                var model = new Dictionary<string, int>(StringComparer.Ordinal);
                foreach (Step step in steps)
                {
                    string key = "k" + step.Key;
                    switch (step.Kind)
                    {
                        case 0:
                            map.Set(key, step.Value);
                            model[key] = step.Value;
                            break;
                        case 1:
                            int got = map.GetOrAdd(key, _ => step.Value);
                            Assert.That(got, Is.EqualTo(model.TryGetValue(key, out int had) ? had : step.Value), "get-or-add returns the entry, or the one it added");
                            model.TryAdd(key, step.Value);
                            break;
                        case 2:
                            Assert.That(map.TryRemove(key, out _), Is.EqualTo(model.Remove(key)), "remove finds the entry exactly when there is one");
                            break;
                        case 3:
                            bool holds = model.TryGetValue(key, out int current) && current == step.Value;
                            Assert.That(map.TryRemove(new KeyValuePair<string, int>(key, step.Value)), Is.EqualTo(holds), "a conditional remove takes only the value it names");
                            if (holds)
                            {
                                model.Remove(key);
                            }

                            break;
                        default:
                            bool matches = model.TryGetValue(key, out int old) && old == step.Value - 1;
                            Assert.That(map.TryUpdate(key, step.Value, step.Value - 1), Is.EqualTo(matches), "a conditional update replaces only the value it names");
                            if (matches)
                            {
                                model[key] = step.Value;
                            }

                            break;
                    }

                    Assert.That(map.Count, Is.EqualTo(model.Count), "the count is exact when nothing else runs");
                    Assert.That(map.MayHaveEntries, Is.EqualTo(model.Count > 0), "\"may have entries\" is false exactly when it is empty");
                    Assert.That(map.ToDictionary(p => p.Key, p => p.Value), Is.EquivalentTo(model), "the entries are the model's");
                }
            },
            iter: 2_000,
            print: steps => string.Join(", ", steps));
    }

    [Test]
    public void UnderConcurrentWriters_TheCountNeverFallsBelowTheEntriesAWriterKnowsAreThere_AndIsExactOnceTheyStop()
    {
        Gen.Select(Gen.Int[2, 4], Gen.Int[1, 8], Gen.Int[0, int.MaxValue]).Sample(
            input =>
            {
                (int writers, int keysEach, int seed) = input;
                var map = new CountedMap<int>();
                Parallel.For(0, writers, new ParallelOptions { MaxDegreeOfParallelism = writers }, w =>
                {
                    var random = new Random(seed + w);
                    var held = new HashSet<string>(StringComparer.Ordinal);
                    for (int i = 0; i < 2_000; i++)
                    {
                        // Own keys: only this writer adds or removes them, so the ones it holds are in the map right now.
                        string own = $"w{w}:{random.Next(keysEach)}";
                        switch (random.Next(4))
                        {
                            case 0:
                                map.Set(own, i);
                                held.Add(own);
                                break;
                            case 1:
                                map.GetOrAdd(own, _ => i);
                                held.Add(own);
                                break;
                            case 2:
                                if (map.TryRemove(own, out _))
                                {
                                    held.Remove(own);
                                }

                                break;
                            default:
                                // A key every writer races on: adds and removes of it move the count while others read it.
                                if (random.Next(2) == 0)
                                {
                                    map.Set("shared", i);
                                }
                                else
                                {
                                    map.TryRemove("shared", out _);
                                }

                                break;
                        }

                        Assert.That(map.Count, Is.GreaterThanOrEqualTo(held.Count), "never below the entries this writer holds");
                        Assert.That(map.MayHaveEntries || held.Count == 0, "never says empty while this writer holds an entry");
                    }
                });

                int entries = map.ToList().Count; // enumerated, not the counter
                Assert.That(map.Count, Is.EqualTo(entries), "exact once every writer stopped");
                Assert.That(map.MayHaveEntries, Is.EqualTo(entries > 0));
            },
            iter: 50,
            threads: 1);
    }
}
