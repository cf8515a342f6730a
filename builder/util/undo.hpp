#pragma once
// Undo on failure: an action that runs when the scope ends unless commit() was called, so
// what a multi-step operation made half-way (a Glance image, an EBS snapshot, an upload)
// is removed on every error path, early returns included.

#include <utility>

namespace bi {

template <class Action> class UndoUnlessCommitted {
public:
  explicit UndoUnlessCommitted(Action action) : m_action(std::move(action)) {}
  ~UndoUnlessCommitted() {
    if (!m_committed) {
      m_action();
    }
  }
  void commit() { m_committed = true; }
  UndoUnlessCommitted(const UndoUnlessCommitted&) = delete;
  UndoUnlessCommitted& operator=(const UndoUnlessCommitted&) = delete;
  UndoUnlessCommitted(UndoUnlessCommitted&&) = delete;
  UndoUnlessCommitted& operator=(UndoUnlessCommitted&&) = delete;

private:
  Action m_action;
  bool m_committed = false;
};

} // namespace bi
