"""The seed demo: a live session counter shared by HTTP views and Socket.IO."""
