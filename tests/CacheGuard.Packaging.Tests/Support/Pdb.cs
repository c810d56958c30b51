using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text;

namespace CacheGuard.Packaging.Tests.Support;

/// <summary>Reads what a debugger needs from an assembly and its portable PDB.</summary>
internal static class Pdb
{
    // The custom debug information kind a compiler writes the source link JSON under (Portable PDB specification).
    private static readonly Guid SourceLinkKind = new("CC110556-A091-4D38-9FEC-25AB9A351A6A");

    /// <summary>Gets the PDB id the assembly's CodeView entry asks for (GUID and stamp).</summary>
    internal static (Guid Guid, uint Stamp) ExpectedPdbId(byte[] assembly)
    {
        using var pe = new PEReader(new MemoryStream(assembly));
        DebugDirectoryEntry codeView = pe.ReadDebugDirectory().Single(e => e.Type == DebugDirectoryEntryType.CodeView);
        return (pe.ReadCodeViewDebugDirectoryData(codeView).Guid, codeView.Stamp);
    }

    /// <summary>Gets whether the assembly says it was built deterministically (a Reproducible debug entry).</summary>
    internal static bool IsDeterministic(byte[] assembly)
    {
        using var pe = new PEReader(new MemoryStream(assembly));
        return pe.ReadDebugDirectory().Any(e => e.Type == DebugDirectoryEntryType.Reproducible);
    }

    /// <summary>Gets a portable PDB's id (GUID and stamp) and its source link JSON, if any.</summary>
    internal static (Guid Guid, uint Stamp, string? SourceLink) Read(byte[] pdb)
    {
        using var provider = MetadataReaderProvider.FromPortablePdbStream(new MemoryStream(pdb));
        MetadataReader reader = provider.GetMetadataReader();
        byte[] id = [.. reader.DebugMetadataHeader!.Id];
        var guid = new Guid(id.AsSpan(0, 16));
        uint stamp = BitConverter.ToUInt32(id, 16);

        string? sourceLink = null;
        foreach (CustomDebugInformationHandle handle in reader.GetCustomDebugInformation(EntityHandle.ModuleDefinition))
        {
            CustomDebugInformation info = reader.GetCustomDebugInformation(handle);
            if (reader.GetGuid(info.Kind) == SourceLinkKind)
            {
                sourceLink = Encoding.UTF8.GetString(reader.GetBlobBytes(info.Value));
            }
        }

        return (guid, stamp, sourceLink);
    }

    /// <summary>Gets the documentation ids ("T:Namespace.Type`1") of every type visible outside the assembly.</summary>
    internal static IReadOnlyList<string> PublicTypeDocumentationIds(byte[] assembly)
    {
        using var pe = new PEReader(new MemoryStream(assembly));
        MetadataReader reader = pe.GetMetadataReader();
        var ids = new List<string>();
        foreach (TypeDefinitionHandle handle in reader.TypeDefinitions)
        {
            TypeDefinition type = reader.GetTypeDefinition(handle);
            if (IsVisible(reader, type))
            {
                ids.Add("T:" + FullName(reader, type));
            }
        }

        return ids;

        static bool IsVisible(MetadataReader reader, TypeDefinition type)
        {
            System.Reflection.TypeAttributes visibility = type.Attributes & System.Reflection.TypeAttributes.VisibilityMask;
            return visibility switch
            {
                System.Reflection.TypeAttributes.Public => true,
                System.Reflection.TypeAttributes.NestedPublic or System.Reflection.TypeAttributes.NestedFamily or System.Reflection.TypeAttributes.NestedFamORAssem =>
                    IsVisible(reader, reader.GetTypeDefinition(type.GetDeclaringType())),
                _ => false,
            };
        }

        static string FullName(MetadataReader reader, TypeDefinition type)
        {
            string name = reader.GetString(type.Name);
            if (type.IsNested)
            {
                return FullName(reader, reader.GetTypeDefinition(type.GetDeclaringType())) + "." + name;
            }

            string ns = reader.GetString(type.Namespace);
            return ns.Length == 0 ? name : ns + "." + name;
        }
    }
}
