"""The search box in the nav: any id in any system opens its document, or lists the candidates."""

from django.shortcuts import redirect, render

from workbench.selectors.find import MAX_QUERY, document_find


def search(request):
    result = document_find(request.GET.get("q", ""), user=request.user)
    if result.single is not None:
        return redirect("documents:detail", pk=result.single.pk)
    status = 400 if result.error else 200
    return render(request, "workbench/search.html", {"result": result, "max_query": MAX_QUERY}, status=status)
