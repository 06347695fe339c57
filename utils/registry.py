"""Named registries: each package registers what it defines (architectures, encoders, heads, objectives, maskers,
tokenizers, tasks) and configs pick entries by name, so a new method is new entries, not edits to the trainer."""


class Registry:
    """A name -> object table with a decorator to fill it and errors that list the known names."""

    def __init__(self, kind):
        self.kind = kind
        self._entries = {}

    def register(self, name):
        def add(obj):
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj
        return add

    def get(self, key, /):
        if key not in self._entries:
            raise ValueError(f"unknown {self.kind} {key!r}; known: {sorted(self._entries)}")
        return self._entries[key]

    def build(self, key, /, *args, **kwargs):
        return self.get(key)(*args, **kwargs)

    def names(self):
        return sorted(self._entries)

    def __contains__(self, name):
        return name in self._entries

    def __repr__(self):
        return f"Registry({self.kind!r}: {', '.join(self.names())})"
