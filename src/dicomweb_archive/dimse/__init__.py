"""``dwa listen``: DIMSE services over an archive (needs the ``dimse`` extra, pynetdicom).

- :mod:`.provider`: the Application Entity, its presentation contexts and limits;
- :mod:`.store`: C-STORE, through the one store path of ``dwa convert`` and STOW-RS;
- :mod:`.find`: C-FIND from the QIDO-RS index, with its matching (:mod:`.query`);
- :mod:`.retrieve`: C-GET and C-MOVE of P10 regenerated from the archive;
- :mod:`.config`: the peers file, allow-list and limits; :mod:`.associations`: the log.
"""
