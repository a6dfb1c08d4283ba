"""Matrix-multiplication algorithms as data: the tensor ``T<n,m,p>`` and exact verification
(:mod:`.tensor`), the :class:`~.algorithm.Algorithm` type and its JSON (:mod:`.algorithm`),
readers and writers of the public formats (:mod:`.parsing`, :mod:`.formats`,
:mod:`.alphatensor`), Z2-to-Z lifting (:mod:`.lifting`), the shipped library and best known
ranks (:mod:`.library`, :mod:`.reference`, ``data/``) and the ``mlo-algorithms`` command
(:mod:`.cli`). Agents may use the algebra and the readers, never the library or its data."""
